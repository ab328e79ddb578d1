/// Values shared by the daemon and the client.
public enum QsentDefaults {
    /// Default socket path of qsentd and the client (env QSENT_SOCKET overrides it).
    public static let socketPath = "/run/qsentd/qsentd.sock"
    /// The socket name the systemd unit gives (FileDescriptorName=).
    public static let fdName = "qsentd"
}
