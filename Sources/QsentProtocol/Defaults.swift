/// Values shared by the daemon and the client.
public enum QsentDefaults {
    /// Version of qsent reported by `info`.
    public static let version = "0.1.0"
    /// Default socket path of qsentd and the client (env QSENT_SOCKET overrides it).
    public static let socketPath = "/run/qsentd/qsentd.sock"
    /// The socket name the systemd unit gives (FileDescriptorName=).
    public static let fdName = "qsentd"
}
