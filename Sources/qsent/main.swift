print("qsent: not built yet")
