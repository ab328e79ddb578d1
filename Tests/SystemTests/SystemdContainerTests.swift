import Foundation
import XCTest

/// The .deb under a real systemd: builds it (Systemd/build-deb.sh), boots a clean Debian 12 root
/// in systemd-nspawn, installs it with apt and checks socket activation, answers, reload,
/// watchdog, idle exit, drain, group access, journal priorities, exposure, remove and purge
/// (Tests/SystemTests/harness/systemd-test.sh; inside.sh lists the checks).
///
/// Skips where the machine cannot boot a container: not root, no systemd-nspawn, or no cached
/// root and no debootstrap / no network to the Debian mirror. QSENT_DEB=PATH tests a prebuilt
/// package instead of building one; QSENT_SKIP_SYSTEM_TESTS=1 skips.
final class SystemdContainerTests: XCTestCase {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let harness = packageRoot.appendingPathComponent("Tests/SystemTests/harness")

    struct Run { var status: Int32; var out: String; var err: String }

    /// Runs a tool, its output going to files (no pipe to fill up), and waits for it.
    func run(_ tool: String, _ args: [String], env: [String: String] = [:]) throws -> Run {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qsent-systemtests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new }
        p.standardOutput = try FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return Run(status: p.terminationStatus,
                   out: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                   err: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    func which(_ name: String) -> String? {
        for d in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(d)/\(name)") { return "\(d)/\(name)" }
        return nil
    }

    func testDebUnderRealSystemd() throws {
        let env = ProcessInfo.processInfo.environment
        if env["QSENT_SKIP_SYSTEM_TESTS"] == "1" { throw XCTSkip("QSENT_SKIP_SYSTEM_TESTS=1") }
        guard getuid() == 0 else { throw XCTSkip("the real-systemd test boots a container with systemd-nspawn and needs root") }
        guard which("systemd-nspawn") != nil else {
            throw XCTSkip("systemd-nspawn is not installed (apt-get install systemd-container); skipping the real-systemd test")
        }
        let cache = env["QSENT_TEST_CACHE"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/cache/qsent-test"
        if !FileManager.default.fileExists(atPath: "\(cache)/bookworm.tar") && which("debootstrap") == nil {
            throw XCTSkip("no cached Debian root \(cache)/bookworm.tar and debootstrap is not installed (apt-get install debootstrap)")
        }

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("qsent-systemtest-\(getpid())")
        try? FileManager.default.removeItem(at: work)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let deb: String
        if let d = env["QSENT_DEB"], !d.isEmpty {
            deb = d
        } else {
            // gzip: the test does not need xz's smaller package and saves minutes of compression.
            // No module imports Foundation: a binary that links its ICU again fails the build.
            let b = try run(Self.packageRoot.appendingPathComponent("Systemd/build-deb.sh").path,
                            [work.appendingPathComponent("deb").path],
                            env: ["QSENT_DEB_COMPRESS": "gzip", "QSENT_DEB_REQUIRE_NO_ICU": "1"])
            guard b.status == 0, let last = b.out.split(separator: "\n").last else {
                return XCTFail("Systemd/build-deb.sh failed (\(b.status)):\n\(b.err.suffix(4000))")
            }
            deb = String(last)
            // The binaries' and the package's sizes (build-deb.sh reports them on stderr).
            print(b.err.split(separator: "\n").filter { $0.contains(" bytes") }.joined(separator: "\n"))
        }
        let evidence = work.appendingPathComponent("evidence")
        let r = try run(Self.harness.appendingPathComponent("systemd-test.sh").path, [deb, evidence.path])
        print(r.out)
        if r.status == 77 {
            throw XCTSkip(r.err.split(separator: "\n").last.map(String.init) ?? "the machine cannot boot a container")
        }
        let results = (try? String(contentsOf: evidence.appendingPathComponent("results.txt"), encoding: .utf8)) ?? ""
        let failed = results.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        XCTAssertEqual(r.status, 0, "real-systemd test failed; evidence in \(evidence.path):\n\(failed.joined(separator: "\n"))\n\(r.err.suffix(3000))")
        XCTAssertTrue(failed.isEmpty, failed.joined(separator: "\n"))
        // Every check ran (a harness that stopped early must not pass).
        for name in ["apt-install", "exposure", "activated", "status-text", "answers", "reload-answers", "reload-swapped",
                     "watchdog", "idle-exit", "reactivation", "drain", "outsider-eacces", "member-answers",
                     "journal-err", "journal-info", "remove", "purge"] {
            XCTAssertTrue(results.contains("\nok \(name):") || results.hasPrefix("ok \(name):"), "check \(name) did not pass:\n\(results)")
        }
        if r.status == 0 { try? FileManager.default.removeItem(at: work) }
    }
}
