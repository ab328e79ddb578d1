import Foundation
import Logging
import QsentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The listening socket: inherited from systemd, or bound by us at a path.
final class Listener {
    let fd: Int32
    /// Path we bound ourselves (and must unlink on exit), nil when inherited.
    let ownedPath: String?
    let describe: String
    private let ownedIdentity: (dev: UInt64, ino: UInt64)?

    private init(fd: Int32, ownedPath: String?, describe: String, identity: (UInt64, UInt64)?) {
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
            for other in inherited where other.fd != chosen.fd { Sys.close(other.fd) }
            _ = fcntl(chosen.fd, F_SETFD, FD_CLOEXEC)
            logger.info("using socket from systemd", metadata: ["fd": "\(chosen.fd)", "name": "\(chosen.name)"])
            return Listener(fd: chosen.fd, ownedPath: nil, describe: "systemd fd \(chosen.fd) (\(chosen.name))", identity: nil)
        }
        return try bindOwn(path: path, logger: logger)
    }

    private static func statPath(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    private static func bindOwn(path: String, logger: Logger) throws -> Listener {
        let fd = try Sys.socket()
        do {
            let oldMask = umask(0o117)  // socket file created as 0660
            defer { umask(oldMask) }
            var attempt = 0
            while true {
                attempt += 1
                let r = try Sys.withUnixAddress(path) { addr, len in bind(fd, addr, len) }
                if r == 0 { break }
                let e = errno
                guard e == EADDRINUSE, attempt == 1 else {
                    var msg = path
                    if e == ENOENT { msg += " (the directory does not exist; create it or pass --socket)" }
                    if e == EACCES { msg += " (permission denied; run as a user that may write there, or pass --socket)" }
                    throw SystemCallError("bind", msg, errno: e)
                }
                guard let st = statPath(path) else { continue }
                guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw ListenerError.notASocket(path) }
                do {
                    let probe = try Sys.connect(path: path)
                    Sys.close(probe)
                    throw ListenerError.inUse(path)
                } catch let err as SystemCallError where err.errno == ECONNREFUSED {
                    logger.notice("replacing stale socket (connection refused)", metadata: ["path": "\(path)"])
                    if unlink(path) != 0 && errno != ENOENT { throw SystemCallError("unlink", path, errno: errno) }
                }
            }
            if chmod(path, 0o660) != 0 { throw SystemCallError("chmod", path, errno: errno) }
            if listen(fd, 128) != 0 { throw SystemCallError("listen", path, errno: errno) }
            let st = statPath(path)
            logger.info("listening", metadata: ["socket": "\(path)"])
            return Listener(fd: fd, ownedPath: path, describe: path,
                            identity: st.map { (UInt64($0.st_dev), UInt64($0.st_ino)) })
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// Stops listening. Unlinks the socket file only if we bound it and it is still ours.
    func close(logger: Logger) {
        if let ownedPath, let id = ownedIdentity, let st = Listener.statPath(ownedPath),
           UInt64(st.st_dev) == id.dev, UInt64(st.st_ino) == id.ino {
            if unlink(ownedPath) != 0 {
                logger.warning("could not remove socket", metadata: ["path": "\(ownedPath)", "errno": "\(errno)"])
            }
        }
        Sys.close(fd)
    }
}
