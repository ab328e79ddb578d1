// swift-tools-version:6.1
import PackageDescription

// libFuzzer harnesses for qsent's parsers (issue 8). A separate package so that the fuzzer and
// sanitizer flags never touch the main build. Build and run them with ../run.sh; see
// docs/TESTING.md. The directory is not named after the main package on purpose: SwiftPM derives
// a path dependency's identity from its directory name, and two equal identities collide.
let package = Package(
    name: "QsentFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "qsent", path: "../../.."),
    ],
    targets: [
        // Per-iteration scratch file and input helpers shared by the harnesses.
        .target(name: "FuzzSupport"),
        // One line of the wire protocol: Request.parse (QsentJSON's parser underneath) and its
        // round trip.
        .executableTarget(name: "FuzzProtocol", dependencies: [
            "FuzzSupport", .product(name: "QsentProtocol", package: "qsent"),
            .product(name: "QsentJSON", package: "qsent"),
        ]),
        // Normalizer + pre-tokenizer + WordPiece over the committed model's vocabulary.
        .executableTarget(name: "FuzzTokenizer", dependencies: [
            "FuzzSupport", .product(name: "QsentTokenizer", package: "qsent"),
            .product(name: "QsentCore", package: "qsent"),
        ]),
        // A .safetensors file: header, entries, offsets, tensor data.
        .executableTarget(name: "FuzzSafetensors", dependencies: [
            "FuzzSupport", .product(name: "QsentCore", package: "qsent"),
        ]),
        // A Hugging Face config.json (ModelConfig.parse over HFJSON).
        .executableTarget(name: "FuzzConfig", dependencies: [
            "FuzzSupport", .product(name: "QsentCore", package: "qsent"),
        ]),
        // A .qsent blob: header, section table, meta, vocabulary, then the engine's model load.
        .executableTarget(name: "FuzzBlob", dependencies: [
            "FuzzSupport", .product(name: "QsentCore", package: "qsent"),
            .product(name: "QsentTokenizer", package: "qsent"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
