import Logging
import QsentIO
import QsentProtocol
import SystemPackage

/// The listening socket: inherited from systemd, or bound by us at a path.
final class Listener: Sendable {
    let fd: FileDescriptor
    /// Path we bound ourselves (and must unlink on exit), nil when inherited.
    let ownedPath: String?
    let describe: String
    private let ownedIdentity: Files.Identity?

    private init(fd: FileDescriptor, ownedPath: String?, describe: String, identity: Files.Identity?) {
        self.fd = fd
        self.ownedPath = ownedPath
        self.describe = describe
        self.ownedIdentity = identity
    }

    enum ListenerError: Error, CustomStringConvertible {
        case inheritedUnusable(String)
        case notASocket(String)
        case inUse(String)

        var description: String {
            switch self {
            case .inheritedUnusable(let s): return s
            case .notASocket(let p): return "\(p) exists and is not a socket; refusing to replace it (remove it or choose another --socket)"
            case .inUse(let p): return "another daemon is already serving on \(p) (a connection succeeded); refusing to steal its socket — stop it first or choose another --socket"
            }
        }
    }

    /// Uses LISTEN_FDS if present, else binds `path`.
    static func open(path: String, logger: Logger) throws -> Listener {
        let inherited = try SystemdDaemon.listenFDs()
        if !inherited.isEmpty {
            let usable = inherited.filter { SystemdDaemon.isListeningUnixStream($0.fd) }
            let chosen = usable.first { $0.name == QsentDefaults.fdName } ?? usable.first
            guard let chosen else {
                throw ListenerError.inheritedUnusable("systemd passed \(inherited.count) fd(s) (\(inherited.map(\.name).joined(separator: ","))) but none is a listening AF_UNIX stream socket")
            }
            for other in inherited where other.fd != chosen.fd { other.fd.closeQuietly() }
            try? chosen.fd.setCloseOnExec()
            logger.info("using socket from systemd", metadata: ["fd": "\(chosen.fd.rawValue)", "name": "\(chosen.name)"])
            return Listener(fd: chosen.fd, ownedPath: nil, describe: "systemd fd \(chosen.fd.rawValue) (\(chosen.name))", identity: nil)
        }
        return try bindOwn(path: path, logger: logger)
    }

    private static func bindOwn(path: String, logger: Logger) throws -> Listener {
        let fd = try UnixSocket.make()
        do {
            let oldMask = Files.setUmask(FilePermissions(rawValue: 0o117))  // socket file created as 0660
            defer { Files.setUmask(oldMask) }
            try bindReplacingStale(fd, path: path, logger: logger)
            try Files.setPermissions(path, FilePermissions(rawValue: 0o660))
            try UnixSocket.listen(fd, backlog: 128, context: path)
            logger.info("listening", metadata: ["socket": "\(path)"])
            return Listener(fd: fd, ownedPath: path, describe: path, identity: Files.identity(path))
        } catch {
            fd.closeQuietly()
            throw error
        }
    }

    /// Binds; on EADDRINUSE replaces a stale socket file (connecting is refused) once, refuses
    /// a live socket or a non-socket.
    private static func bindReplacingStale(_ fd: FileDescriptor, path: String, logger: Logger) throws {
        guard let first = bindError(fd, path: path) else { return }
        guard first.errno == .addressInUse else { throw explained(first, path: path) }
        try removeIfStale(path, logger: logger)
        if let second = bindError(fd, path: path) { throw explained(second, path: path) }
    }

    private static func bindError(_ fd: FileDescriptor, path: String) -> IOError? {
        do throws(IOError) {
            try UnixSocket.bind(fd, path: path)
            return nil
        } catch {
            return error
        }
    }

    private static func explained(_ e: IOError, path: String) -> IOError {
        var msg = path
        if e.errno == .noSuchFileOrDirectory { msg += " (the directory does not exist; create it or pass --socket)" }
        if e.errno == .permissionDenied { msg += " (permission denied; run as a user that may write there, or pass --socket)" }
        return IOError("bind", msg, errno: e.errno)
    }

    /// The path is taken: remove it if it is a socket nobody answers on; throw if it is live or
    /// not a socket. Returns also when the path vanished meanwhile.
    private static func removeIfStale(_ path: String, logger: Logger) throws {
        guard let st = Files.identity(path) else { return }
        guard st.isSocket else { throw ListenerError.notASocket(path) }
        let probe: FileDescriptor
        do throws(IOError) {
            probe = try UnixSocket.connect(path: path)
        } catch {
            guard error.errno == .connectionRefused else { throw error }
            logger.notice("replacing stale socket (connection refused)", metadata: ["path": "\(path)"])
            try Files.remove(path)
            return
        }
        probe.closeQuietly()
        throw ListenerError.inUse(path)
    }

    /// Stops listening. Unlinks the socket file only if we bound it and it is still ours.
    func close(logger: Logger) {
        if let ownedPath, let id = ownedIdentity, let st = Files.identity(ownedPath),
           st.device == id.device, st.inode == id.inode {
            do { try Files.remove(ownedPath) } catch {
                logger.warning("could not remove socket", metadata: ["path": "\(ownedPath)", "errno": "\(error.errno.rawValue)"])
            }
        }
        fd.closeQuietly()
    }
}
