print("qsentd: not built yet")
