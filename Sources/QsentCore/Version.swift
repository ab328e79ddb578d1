/// The qsent release; reported by `--version`, `info` answers and blob metadata.
public enum QsentVersion {
    public static let string = "0.1.0"
}
