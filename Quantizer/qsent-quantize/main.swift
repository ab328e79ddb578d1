print("qsent-quantize: not built yet")
