#if canImport(Glibc)
import Glibc
#endif
func now() -> Double { var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 }
var text = ""
let words = ["plain", "words", "with", "é", "ünïcödé", "😀", "\\n", "\\\"quoted\\\"", "\\u00e9", "tabs\\t"]
var i = 0
while text.utf8.count < 900_000 { text += words[i % words.count] + " "; i += 1 }
let line = Array("{\"id\":1,\"text\":\"\(text)\"}".utf8)
var best = 1e9
var total = 0
for _ in 0..<30 {
    let t0 = now()
    let v = try! JSONParser.parse(bytes: line)
    let dt = now() - t0
    if case .string(let s)? = v["text"]?.value { total += s.utf8.count }
    best = min(best, dt)
}
print("line \(line.count) bytes: best parse \((best * 100_000).rounded() / 100) ms (\(total / 30) bytes decoded)")
