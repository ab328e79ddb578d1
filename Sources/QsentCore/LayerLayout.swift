/// The int8 weight panel layout of ckernels.h ("int8 weights: packed layout"): output
/// channels padded to panels of 16, the reduction dimension to groups of 4. The one place in
/// Swift that states the padding rule; the quantizer, the blob reader and the kernel wrapper
/// use it, and a test checks it against the C side's `qk_packed_s8_size`.
public enum PackedS8 {
    /// Output channels per panel.
    public static let panelChannels = 16
    /// Consecutive k values per channel inside a panel (one 32-bit lane).
    public static let kGroup = 4

    /// round_up(n, 16)
    public static func paddedN(_ n: Int) -> Int { (n + panelChannels - 1) / panelChannels * panelChannels }
    /// round_up(k, 4): also the row stride of quantized activations.
    public static func paddedK(_ k: Int) -> Int { (k + kGroup - 1) / kGroup * kGroup }
    /// Shape [Np, Kp] of the packed weights of an n x k layer.
    public static func shape(n: Int, k: Int) -> [Int] { [paddedN(n), paddedK(k)] }
}

/// The six tensors of an encoder layer, in storage order, with their shapes: the one table
/// behind the HF tensor names, the in-memory layers, the blob's sections and the quantizer.
public enum LayerTensor: CaseIterable, Sendable {
    case qkv, out, attnNorm, ffn1, ffn2, outNorm

    public enum Shape: Equatable, Sendable {
        /// A linear layer: weight [n][k] (PyTorch layout) and bias [n].
        case linear(n: Int, k: Int)
        /// A LayerNorm: gamma and beta [dim].
        case norm(dim: Int)
    }

    public func shape(_ c: ModelConfig) -> Shape {
        switch self {
        case .qkv: return .linear(n: 3 * c.dim, k: c.dim)  // Q, K, V fused; Q pre-scaled
        case .out: return .linear(n: c.dim, k: c.dim)
        case .ffn1: return .linear(n: c.hidden, k: c.dim)
        case .ffn2: return .linear(n: c.dim, k: c.hidden)
        case .attnNorm, .outNorm: return .norm(dim: c.dim)
        }
    }

    /// The name inside `layer.{i}.` of the blob (docs/FORMAT.md, "Sections").
    public var blobName: String {
        switch self {
        case .qkv: return "qkv"
        case .out: return "out"
        case .attnNorm: return "attn_norm"
        case .ffn1: return "ffn1"
        case .ffn2: return "ffn2"
        case .outNorm: return "out_norm"
        }
    }
}

/// One encoder layer's six tensors, generic over how a linear layer (`L`) and a LayerNorm
/// (`N`) are held: FP32 arrays (HF), int8 panels (quantizer), or views of the mapping (engine).
public struct LayerTensors<L, N> {
    public var qkv: L
    public var out: L
    public var attnNorm: N
    public var ffn1: L
    public var ffn2: L
    public var outNorm: N

    public init(qkv: L, out: L, attnNorm: N, ffn1: L, ffn2: L, outNorm: N) {
        self.qkv = qkv; self.out = out; self.attnNorm = attnNorm
        self.ffn1 = ffn1; self.ffn2 = ffn2; self.outNorm = outNorm
    }

    /// Builds the six tensors in `LayerTensor` order from their roles and shapes.
    public init(config c: ModelConfig, linear: (LayerTensor, _ n: Int, _ k: Int) throws -> L,
                norm: (LayerTensor, _ dim: Int) throws -> N) rethrows {
        var ls: [LayerTensor: L] = [:], ns: [LayerTensor: N] = [:]
        for role in LayerTensor.allCases {
            switch role.shape(c) {
            case .linear(let n, let k): ls[role] = try linear(role, n, k)
            case .norm(let d): ns[role] = try norm(role, d)
            }
        }
        self.init(qkv: ls[.qkv]!, out: ls[.out]!, attnNorm: ns[.attnNorm]!,
                  ffn1: ls[.ffn1]!, ffn2: ls[.ffn2]!, outNorm: ns[.outNorm]!)
    }

    public subscript(linear role: LayerTensor) -> L? {
        switch role {
        case .qkv: return qkv
        case .out: return out
        case .ffn1: return ffn1
        case .ffn2: return ffn2
        case .attnNorm, .outNorm: return nil
        }
    }

    public subscript(norm role: LayerTensor) -> N? {
        switch role {
        case .attnNorm: return attnNorm
        case .outNorm: return outNorm
        default: return nil
        }
    }

    /// Converts every tensor, in `LayerTensor` order.
    public func map<L2, N2>(linear: (LayerTensor, L) throws -> L2, norm: (LayerTensor, N) throws -> N2) rethrows -> LayerTensors<L2, N2> {
        var ls: [LayerTensor: L2] = [:], ns: [LayerTensor: N2] = [:]
        for role in LayerTensor.allCases {
            if let l = self[linear: role] { ls[role] = try linear(role, l) }
            if let n = self[norm: role] { ns[role] = try norm(role, n) }
        }
        return LayerTensors<L2, N2>(qkv: ls[.qkv]!, out: ls[.out]!, attnNorm: ns[.attnNorm]!,
                                    ffn1: ls[.ffn1]!, ffn2: ls[.ffn2]!, outNorm: ns[.outNorm]!)
    }

    /// Visits every tensor, in `LayerTensor` order.
    public func forEach(linear: (LayerTensor, L) throws -> Void, norm: (LayerTensor, N) throws -> Void) rethrows {
        for role in LayerTensor.allCases {
            if let l = self[linear: role] { try linear(role, l) }
            if let n = self[norm: role] { try norm(role, n) }
        }
    }
}

extension LayerTensors: Sendable where L: Sendable, N: Sendable {}
extension LayerTensors: Equatable where L: Equatable, N: Equatable {}
