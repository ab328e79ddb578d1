import Foundation

/// A loaded model: tokenizer + weights + forward pass. Reentrant: `classify` may be called
/// from several threads at once (each call uses its own scratch memory).
public final class Engine: @unchecked Sendable {
    public let info: ModelInfo

    /// Loads an HF model folder (FP32 reference path) or a `.qsent` blob (int8 path).
    public init(path: String, options: EngineOptions = EngineOptions()) throws {
        throw EngineError.notReady(path)
    }

    /// Classifies texts; several texts are run as one packed batch.
    public func classify(_ texts: [String]) throws -> [Classification] {
        []
    }
}

public enum EngineError: Error {
    case notReady(String)
}
