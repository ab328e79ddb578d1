import Logging
import QsentCore
import QsentIO
import SystemPackage

/// What the model path looks like on disk: enough to notice that it was replaced by rename
/// (device, inode), rewritten or truncated in place (size, mtime, ctime), removed, or turned
/// into something that is not a regular file. For an HF folder, each file in it.
struct ModelFileState: Equatable, Sendable {
    enum Entry: Equatable, Sendable {
        case present(FileStatus)
        /// stat failed (the path is gone or unreadable): the errno.
        case absent(Errno)
    }

    /// The path itself. For a folder only its identity counts (device, inode): its own times
    /// move whenever any file is created in it.
    var root: Entry
    /// The files of a folder, by name (empty for a blob).
    var files: [String: Entry]

    static func observe(_ path: String) -> ModelFileState {
        let root: Entry
        do { root = .present(try Files.status(path)) } catch { return ModelFileState(root: .absent(error.errno), files: [:]) }
        guard case .present(var dir) = root, dir.kind == .directory else { return ModelFileState(root: root, files: [:]) }
        dir.size = 0
        dir.modifiedNanos = 0
        dir.changedNanos = 0
        var files: [String: Entry] = [:]
        for name in (try? Files.list(directory: path)) ?? [] {
            do { files[name] = .present(try Files.status(path + "/" + name)) } catch { files[name] = .absent(error.errno) }
        }
        return ModelFileState(root: .present(dir), files: files)
    }
}

/// The state of the model file watch (docs/DAEMON.md, "Replacing the model"): what the model
/// path looked like when the daemon last read it (successfully or not), and what is wrong with
/// it while it is not the model being served.
final class ModelWatch: Sendable {
    /// How often the watcher stats the model path. A change is acted on once the path looked
    /// the same at two polls in a row (a copy in progress keeps changing size and mtime).
    static let pollMilliseconds: Int32 = 1000

    private struct State {
        var lastRead: ModelFileState?
        var problem: String?
    }

    private let state = Locked(State())

    /// Records a load attempt: `observed` is the path's state taken just before it was read.
    func record(_ observed: ModelFileState, problem: String?) {
        state.withLock { $0 = State(lastRead: observed, problem: problem) }
    }

    var lastRead: ModelFileState? { state.withLock { $0.lastRead } }

    /// nil while the file at the model path is the model being served.
    var problem: String? { state.withLock { $0.problem } }
}

extension Server {
    /// The first load: like `loadEngine`, and records what the file looked like for the watch.
    func loadWatchedEngine() throws -> Loaded {
        let observed = ModelFileState.observe(config.model)
        let e = try Server.loadEngine(config: config, logger: logger)
        modelWatch.record(observed, problem: nil)
        return e
    }

    /// Starts the thread that stats the model path every `ModelWatch.pollMilliseconds` and
    /// reloads when it changed and then stayed unchanged for one more poll. It ends when the
    /// shutdown starts (the wake pipe becomes readable).
    func startModelWatch() {
        do {
            let t = try OSThread.spawn(name: "qsentd-modelwatch") { [self] in watchModel() }
            t.detach()
        } catch {
            logger.error("cannot start the model file watch (\(error)); changes to \(config.model) take effect only on reload")
        }
    }

    private func watchModel() {
        var pending: ModelFileState?
        while true {
            do {
                if try Poll.wait(wakeFD, for: .readable, timeoutMs: ModelWatch.pollMilliseconds) { return }
            } catch {
                Clock.sleep(milliseconds: Int(ModelWatch.pollMilliseconds))
            }
            let now = ModelFileState.observe(config.model)
            guard let read = modelWatch.lastRead, now != read else {
                pending = nil
                continue
            }
            guard now == pending else {
                if pending == nil {
                    logger.notice("model file changed on disk; reloading once it stays unchanged for \(ModelWatch.pollMilliseconds) ms",
                                  metadata: ["path": "\(config.model)"])
                }
                pending = now
                continue
            }
            pending = nil
            _ = reload(reason: "model file changed on disk")
        }
    }
}
