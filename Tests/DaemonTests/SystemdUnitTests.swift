import Foundation
import XCTest

/// The shipped units must pass `systemd-analyze verify` and reach an exposure score <= 1.0.
final class SystemdUnitTests: XCTestCase {
    func analyzer() throws -> String {
        guard let p = TestEnv.which("systemd-analyze") else {
            throw XCTSkip("systemd-analyze is not installed (package systemd); skipping unit checks")
        }
        return p
    }

    /// Copies the units, pointing ExecStart at the built qsentd (verify checks it is executable).
    func stagedUnits() throws -> URL {
        let dir = try TestEnv.tempDir("units")
        let src = TestEnv.packageRoot.appendingPathComponent("Systemd")
        let qsentd = try TestEnv.qsentd()
        for u in ["qsentd.socket", "qsentd.service"] {
            let text = try String(contentsOf: src.appendingPathComponent(u), encoding: .utf8)
                .replacingOccurrences(of: "/usr/bin/qsentd", with: qsentd)
            try text.write(to: dir.appendingPathComponent(u), atomically: true, encoding: .utf8)
        }
        return dir
    }

    func testVerify() throws {
        let sa = try analyzer()
        let dir = try stagedUnits()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (s, out, err) = try runTool(sa, ["verify", dir.appendingPathComponent("qsentd.socket").path, dir.appendingPathComponent("qsentd.service").path])
        XCTAssertEqual(s, 0, out + err)
        XCTAssertFalse(err.contains("qsentd."), "verify warnings: \(err)")
    }

    func testSecurityExposure() throws {
        let sa = try analyzer()
        let dir = try stagedUnits()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (s, out, err) = try runTool(sa, ["security", "--offline=yes", dir.appendingPathComponent("qsentd.service").path])
        XCTAssertEqual(s, 0, err)
        guard let r = out.range(of: "Overall exposure level for qsentd.service: ") else { return XCTFail("no exposure line:\n\(out)\(err)") }
        let num = out[r.upperBound...].prefix { $0.isNumber || $0 == "." }
        guard let x = Double(num) else { return XCTFail("cannot parse exposure from \(out[r.upperBound...].prefix(20))") }
        XCTAssertLessThanOrEqual(x, 1.0, out)
    }

    func testSocketUnitSettings() throws {
        let text = try String(contentsOf: TestEnv.packageRoot.appendingPathComponent("Systemd/qsentd.socket"), encoding: .utf8)
        XCTAssertTrue(text.contains("ListenStream=/run/qsentd/qsentd.sock"))
        XCTAssertTrue(text.contains("SocketMode=0660"))
        XCTAssertTrue(text.contains("FileDescriptorName=qsentd"))
    }
}
