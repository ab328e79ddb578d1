import Foundation
import QsentIO
import XCTest

final class FileImageTests: XCTestCase {
    /// The image holds the file's bytes, and the page after its last one is a PROT_NONE guard
    /// (so a loader or kernel that reads past a section ending the file faults there, every
    /// time), for sizes around a page boundary and on the 2 MiB-aligned huge-page path.
    func testImageIsTheFileFollowedByAGuardPage() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qsent-image-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for n in [1, page - 1, page, page + 1, 3 * page, (2 << 20) + 5] {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }
            let url = dir.appendingPathComponent("f\(n)")
            try Data(bytes).write(to: url)
            let image = try FileImage(path: url.path)
            XCTAssertEqual(image.count, n)
            XCTAssertEqual(Array(image.bytes), bytes, "\(n) bytes")
            let base = UInt(bitPattern: image.bytes.baseAddress)
            let guardAt = base + UInt((n + page - 1) / page * page)
            // (read to EOF: /proc files stat as empty, so size-based readers see nothing)
            let handle = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/maps"))
            let maps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            try handle.close()
            let regions = maps.split(separator: "\n").compactMap { line -> (ClosedRange<UInt>, String)? in
                let f = line.split(separator: " ")
                let r = f[0].split(separator: "-")
                guard f.count >= 2, r.count == 2, let lo = UInt(r[0], radix: 16), let hi = UInt(r[1], radix: 16) else { return nil }
                return (lo...(hi - 1), String(f[1]))
            }
            let image0 = regions.first { $0.0.contains(base) }
            XCTAssertEqual(image0?.1, "r--p", "\(n) bytes: the image is read-only")
            let guardRegion = regions.first { $0.0.contains(guardAt) }
            XCTAssertEqual(guardRegion?.1, "---p", "\(n) bytes: no guard page at the image's end")
            XCTAssertTrue(guardRegion?.0.contains(guardAt + UInt(page) - 1) ?? false, "\(n) bytes: the guard is a whole page")
        }
    }
}
