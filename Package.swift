// swift-tools-version:6.1
import PackageDescription

// One module per responsibility; see README.md "Architecture".
let package = Package(
    name: "qsent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "qsent", targets: ["qsent"]),
        .executable(name: "qsentd", targets: ["qsentd"]),
        .executable(name: "qsent-quantize", targets: ["qsent-quantize"]),
        .library(name: "QsentCore", targets: ["QsentCore"]),
        // For the fuzz harnesses (Tests/Fuzz/Harnesses, a separate package).
        .library(name: "QsentTokenizer", targets: ["QsentTokenizer"]),
        .library(name: "QsentProtocol", targets: ["QsentProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C: int8/fp32 GEMM, activation quantization and elementwise ops, one file per ISA,
        // selected at run time (no global compiler flags: per-function target attributes).
        .target(name: "CKernels"),
        // libsystemd: sd_listen_fds_with_names, sd_notify.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // BERT WordPiece tokenizer, bit-exact with Hugging Face `tokenizers`.
        .target(name: "QsentTokenizer"),
        // Safetensors, HF config, .qsent blob, mmap, and the FP32 / int8 forward pass.
        .target(
            name: "QsentCore",
            dependencies: [
                "CKernels", "QsentTokenizer",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Wire protocol shared by the daemon and the client: JSON lines, request/response types.
        .target(name: "QsentProtocol", dependencies: ["QsentCore"]),
        .executableTarget(
            name: "qsentd",
            dependencies: [
                "QsentCore", "QsentProtocol", "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "qsent",
            dependencies: [
                "QsentCore", "QsentProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Offline quantizer: HF folder -> .qsent blob.
        .target(
            name: "QsentQuantizer",
            dependencies: ["QsentCore", "QsentTokenizer", .product(name: "SystemPackage", package: "swift-system")],
            path: "Quantizer/QsentQuantizer"
        ),
        .executableTarget(
            name: "qsent-quantize",
            dependencies: [
                "QsentQuantizer", "QsentCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Quantizer/qsent-quantize"
        ),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels"]),
        .testTarget(name: "QsentTokenizerTests", dependencies: ["QsentTokenizer"]),
        .testTarget(name: "QsentCoreTests", dependencies: ["QsentCore", "QsentQuantizer"]),
        .testTarget(
            name: "QuantizerTests",
            dependencies: ["QsentQuantizer", "QsentCore"],
            // The CLI test runs the built tool.
        ),
        .testTarget(name: "DaemonTests", dependencies: ["QsentProtocol", "QsentCore"]),
    ],
    swiftLanguageModes: [.v5]
)
