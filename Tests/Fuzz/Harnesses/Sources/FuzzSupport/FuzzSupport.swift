import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The bytes libFuzzer hands to `LLVMFuzzerTestOneInput`, copied once into an array so the
/// harnesses themselves stay free of raw pointers.
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A file rewritten on every iteration, for readers that only take a path (they mmap it).
/// One per process, in /dev/shm when it exists (no disk I/O), named after the pid so parallel
/// fuzzers (`-jobs`, `-fork`) do not share it.
public struct ScratchFile: Sendable {
    public let path: String

    public init(suffix: String) {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        path = "\(dir)/qsent-fuzz-\(getpid())\(suffix)"
    }

    /// Replaces the file's content with `bytes` (truncate + write; the reader maps it afterwards).
    public func write(_ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot create scratch file \(path): errno \(errno)")
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            precondition(n > 0, "cannot write scratch file \(path): errno \(errno)")
            done += n
        }
    }
}

/// Little-endian field access on a byte array (for harnesses that repair checksums).
public func loadLE64(_ b: [UInt8], _ at: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<8 { v |= UInt64(b[at + i]) << (8 * UInt64(i)) }
    return v
}

public func loadLE32(_ b: [UInt8], _ at: Int) -> UInt32 {
    var v: UInt32 = 0
    for i in 0..<4 { v |= UInt32(b[at + i]) << (8 * UInt32(i)) }
    return v
}

public func storeLE64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
    for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
}

/// A harness found a wrong answer (not a crash of the code under test): abort so libFuzzer
/// records the input as a crash.
public func fuzzCheck(_ ok: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !ok() {
        FileHandle.standardError.write(Data("fuzz invariant violated: \(message())\n".utf8))
        abort()
    }
}

/// The package root (Tests/Fuzz/Harnesses/Sources/FuzzSupport/FuzzSupport.swift -> ../../../../..).
public let packageRoot: URL = {
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<6 { u.deleteLastPathComponent() }
    return u
}()
