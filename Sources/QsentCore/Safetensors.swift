internal import QsentIO
import QsentJSON
import QsentProtocol
import QsentTokenizer

/// Element types a safetensors header may declare. Only F32, F16 and BF16 can be read as
/// weights; the others are parsed so that a checkpoint carrying, say, an I64 `position_ids`
/// buffer still validates.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

    public var size: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }

    public var isFloatWeight: Bool { self == .f32 || self == .f16 || self == .bf16 }
}

public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case tooSmall(file: String, size: Int)
    case headerLength(file: String, length: UInt64, fileSize: Int)
    case headerNotJSON(file: String, detail: String)
    case badEntry(file: String, tensor: String, problem: String)
    case unsupportedDType(file: String, tensor: String, dtype: String)
    case offsetsOutOfRange(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case sizeMismatch(file: String, tensor: String, shape: [Int], dtype: String, bytes: Int)
    case overlap(file: String, first: String, second: String)
    case badIndex(file: String, problem: String)
    case missingTensor(name: String, files: [String])
    case notFloat(file: String, tensor: String, dtype: String)
    case notContiguous(file: String, problem: String)
    case nonFinite(file: String, tensor: String, index: Int, value: Float)

    public var description: String {
        switch self {
        case .tooSmall(let f, let s):
            return "\(f): \(s) bytes is too small for a safetensors file (needs an 8-byte header length); the file is truncated or not safetensors"
        case .headerLength(let f, let l, let s):
            return "\(f): header length \(l) does not fit in the \(s)-byte file; the file is truncated or corrupt"
        case .headerNotJSON(let f, let d):
            return "\(f): header is not a valid JSON object (\(d)); the file is corrupt or not safetensors"
        case .badEntry(let f, let t, let p):
            return "\(f): tensor '\(t)': \(p)"
        case .unsupportedDType(let f, let t, let d):
            return "\(f): tensor '\(t)' has unknown dtype '\(d)'"
        case .offsetsOutOfRange(let f, let t, let b, let e, let s):
            return "\(f): tensor '\(t)' data_offsets [\(b), \(e)) fall outside the \(s)-byte data section; the file is truncated or corrupt"
        case .sizeMismatch(let f, let t, let shape, let d, let b):
            return "\(f): tensor '\(t)' shape \(shape) of \(d) does not match its \(b) data bytes"
        case .overlap(let f, let a, let b):
            return "\(f): tensors '\(a)' and '\(b)' overlap in the data section; the file is corrupt"
        case .badIndex(let f, let p):
            return "\(f): \(p)"
        case .missingTensor(let n, let files):
            return "tensor '\(n)' is missing from \(files.joined(separator: ", ")); is this the right architecture?"
        case .notFloat(let f, let t, let d):
            return "\(f): tensor '\(t)' is \(d); weights must be F32, F16 or BF16"
        case .notContiguous(let f, let p):
            return "\(f): \(p); the tensors do not line up with the data section (wrong header length, or a truncated or corrupt file): re-export the checkpoint"
        case .nonFinite(let f, let t, let i, let v):
            return "\(f): tensor '\(t)' holds \(v) at element \(i); the checkpoint is broken (diverged training or a bad conversion): use a checkpoint with finite weights"
        }
    }
}

/// One tensor inside a mapped safetensors file.
public struct SafetensorsTensor: Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    public let file: MappedFile
    /// Absolute byte range inside `file`.
    public let range: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }

    /// The values as Float32 (F16 and BF16 are widened exactly).
    public func floats() throws -> [Float] {
        let bytes = file.slice(range)
        let n = elementCount
        if n == 0 { return [] } // (see Array.uninitialized: never fill the shared empty storage)
        switch dtype {
        case .f32:
            return [Float](unsafeUninitializedCapacity: n) { buf, count in
                for i in 0..<n {
                    buf[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
                count = n
            }
        case .bf16:
            return [Float](unsafeUninitializedCapacity: n) { buf, count in
                for i in 0..<n {
                    let h = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    buf[i] = Float(bitPattern: UInt32(h) << 16)
                }
                count = n
            }
        case .f16:
            return [Float](unsafeUninitializedCapacity: n) { buf, count in
                for i in 0..<n {
                    let h = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    buf[i] = halfToFloat(h)
                }
                count = n
            }
        default:
            throw SafetensorsError.notFloat(file: file.path, tensor: name, dtype: dtype.rawValue)
        }
    }
}

/// IEEE 754 binary16 -> binary32, exact (subnormals, infinities and NaN included).
@inline(__always)
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int(h >> 10) & 0x1F
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // subnormal: mant * 2^-24
        let v = Float(mant) * Float(bitPattern: 0x3380_0000)  // 2^-24
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp + 112) << 23 | (mant << 13))
}

/// A single `.safetensors` file, mapped and fully validated at open.
public struct SafetensorsFile: Sendable {
    public let file: MappedFile
    public let tensors: [String: SafetensorsTensor]
    public let metadata: [String: String]

    /// Upper bound on the JSON header, as in the reference implementation (100 MB).
    static let maxHeader = 100_000_000

    public init(path: String) throws {
        try self.init(mapped: MappedFile(path: path))
    }

    public init(mapped file: MappedFile) throws {
        self.file = file
        let path = file.path
        guard file.count >= 8 else { throw SafetensorsError.tooSmall(file: path, size: file.count) }
        let n = file.loadLE(UInt64.self, at: 0)
        guard n >= 2, n <= UInt64(Self.maxHeader), n <= UInt64(file.count - 8) else {
            throw SafetensorsError.headerLength(file: path, length: n, fileSize: file.count)
        }
        let headerEnd = 8 + Int(n)
        let header: [JSONMember]
        do {
            let value = try JSONParser.parse(bytes: Array(file.slice(8..<headerEnd)), maxDepth: HFJSON.maxDepth)
            guard case .object(let members) = value else {
                throw SafetensorsError.headerNotJSON(file: path, detail: "the top level is \(value.typeName), not an object")
            }
            header = members
        } catch let e as SafetensorsError {
            throw e
        } catch {
            throw SafetensorsError.headerNotJSON(file: path, detail: "\(error)")
        }
        let dataSize = file.count - headerEnd
        var tensors: [String: SafetensorsTensor] = [:]
        var metadata: [String: String] = [:]
        for member in header {
            let name = member.key
            let value = try HeaderEntry(member.value, file: path, name: name)
            if name == "__metadata__" {
                guard case .metadata(let m) = value else {
                    throw SafetensorsError.badEntry(file: path, tensor: name, problem: "__metadata__ must map strings to strings")
                }
                metadata = m
                continue
            }
            guard case .tensor(let dtypeName, let shapeOpt, let offsOpt) = value else {
                throw SafetensorsError.badEntry(file: path, tensor: name, problem: "entry is not a tensor description")
            }
            guard let dtypeName else {
                throw SafetensorsError.badEntry(file: path, tensor: name, problem: "missing 'dtype'")
            }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw SafetensorsError.unsupportedDType(file: path, tensor: name, dtype: dtypeName)
            }
            guard let shape = shapeOpt, shape.allSatisfy({ $0 >= 0 }) else {
                throw SafetensorsError.badEntry(file: path, tensor: name, problem: "'shape' must be an array of non-negative integers")
            }
            guard let offs = offsOpt, offs.count == 2, offs[0] >= 0, offs[1] >= 0 else {
                throw SafetensorsError.badEntry(file: path, tensor: name, problem: "'data_offsets' must be two non-negative integers")
            }
            let (begin, end) = (offs[0], offs[1])
            guard begin <= end, end <= dataSize else {
                throw SafetensorsError.offsetsOutOfRange(file: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
            }
            var elements = 1
            for d in shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw SafetensorsError.sizeMismatch(file: path, tensor: name, shape: shape, dtype: dtypeName, bytes: end - begin) }
                elements = p
            }
            let (bytes, o) = elements.multipliedReportingOverflow(by: dtype.size)
            guard !o, bytes == end - begin else {
                throw SafetensorsError.sizeMismatch(file: path, tensor: name, shape: shape, dtype: dtypeName, bytes: end - begin)
            }
            tensors[name] = SafetensorsTensor(name: name, dtype: dtype, shape: shape, file: file,
                                              range: (headerEnd + begin)..<(headerEnd + end))
        }
        // Non-overlapping data.
        let sorted = tensors.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw SafetensorsError.overlap(file: path, first: a.name, second: b.name)
        }
        // As the reference implementation: the tensors tile the data section exactly, from
        // byte 0 to its end, with no gap and nothing after the last one. A header length that
        // is off shifts every tensor and is caught here.
        var expectedBegin = 0
        for t in tensors.values.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            let begin = t.range.lowerBound - headerEnd
            guard begin == expectedBegin else {
                throw SafetensorsError.notContiguous(file: path, problem: "tensor '\(t.name)' starts at data byte \(begin), expected \(expectedBegin)")
            }
            expectedBegin = t.range.upperBound - headerEnd
        }
        guard expectedBegin == dataSize else {
            throw SafetensorsError.notContiguous(file: path, problem: "the tensors end at data byte \(expectedBegin), but the data section is \(dataSize) bytes")
        }
        self.tensors = tensors
        self.metadata = metadata
    }
}

/// One value of the header object: a tensor description, or `__metadata__`.
private enum HeaderEntry {
    case tensor(dtype: String?, shape: [Int]?, offsets: [Int]?)
    case metadata([String: String])

    /// Numbers are accepted only when they are exact non-negative integers (an integer literal,
    /// or a literal such as 2.0 or 1e3 whose value is one); anything else is a bad entry.
    private static func integers(_ v: JSONValue?, file: String, name: String, field: String) throws -> [Int]? {
        guard let v else { return nil }
        guard case .array(let items) = v else {
            throw SafetensorsError.badEntry(file: file, tensor: name, problem: "wrong JSON type: '\(field)' is \(v.typeName), expected an array")
        }
        var out: [Int] = []
        for item in items {
            guard case .number(let literal) = item else {
                throw SafetensorsError.badEntry(file: file, tensor: name, problem: "wrong JSON type: '\(field)' holds \(item.typeName), expected numbers")
            }
            if let i = Int(literal), i >= 0 { out.append(i); continue }
            guard let d = Double(literal), d >= 0, d <= 9.0e15, d.rounded() == d else {
                throw SafetensorsError.badEntry(file: file, tensor: name, problem: "'\(field)' must hold non-negative integers")
            }
            out.append(Int(d))
        }
        return out
    }

    init(_ value: JSONValue, file: String, name: String) throws {
        guard case .object(let members) = value else {
            throw SafetensorsError.badEntry(file: file, tensor: name, problem: "wrong JSON type: \(value.typeName), expected an object")
        }
        // __metadata__ (or any object of strings without a dtype): string to string.
        if !members.contains(where: { $0.key == "dtype" }) {
            var m: [String: String] = [:]
            var allStrings = true
            for member in members {
                guard case .string(let s) = member.value else { allStrings = false; break }
                m[member.key] = s
            }
            if allStrings { self = .metadata(m); return }
        }
        var dtype: String?
        if let d = value["dtype"]?.value {
            guard case .string(let s) = d else {
                throw SafetensorsError.badEntry(file: file, tensor: name, problem: "wrong JSON type: 'dtype' is \(d.typeName), expected a string")
            }
            dtype = s
        }
        self = .tensor(dtype: dtype,
                       shape: try Self.integers(value["shape"]?.value, file: file, name: name, field: "shape"),
                       offsets: try Self.integers(value["data_offsets"]?.value, file: file, name: name, field: "data_offsets"))
    }
}

/// A checkpoint: one safetensors file, or a sharded set described by
/// `model.safetensors.index.json`.
public struct Checkpoint: Sendable {
    public let files: [SafetensorsFile]
    private let index: [String: SafetensorsTensor]

    public var tensorNames: [String] { index.keys.sorted() }

    /// Opens `dir/model.safetensors`, or the shards listed in `dir/model.safetensors.index.json`.
    public init(directory dir: String) throws {
        let single = joinPath(dir, "model.safetensors")
        let indexPath = joinPath(dir, "model.safetensors.index.json")
        if Files.exists(single) {
            try self.init(files: [SafetensorsFile(path: single)])
        } else if Files.exists(indexPath) {
            try self.init(indexPath: indexPath)
        } else {
            throw SafetensorsError.badIndex(file: dir, problem: "no model.safetensors or model.safetensors.index.json here; convert .bin/.pt checkpoints to safetensors first")
        }
    }

    public init(indexPath: String) throws {
        let data: [UInt8]
        do { data = try Files.readRegularFile(indexPath, limit: 256 << 20) } catch {
            throw SafetensorsError.badIndex(file: indexPath, problem: "cannot read: \(error)")
        }
        guard let obj = try? HFJSON.parse(data), case .object = obj else {
            throw SafetensorsError.badIndex(file: indexPath, problem: "not a JSON object")
        }
        guard case .object(let map)? = obj["weight_map"], !map.isEmpty else {
            throw SafetensorsError.badIndex(file: indexPath, problem: "missing or empty 'weight_map'")
        }
        let dir = parentPath(indexPath)
        var shardNames: [String: String] = [:]
        for (tensor, f) in map {
            guard let f = f.string, !f.isEmpty, !f.contains("/"), f != "..", f != "." else {
                throw SafetensorsError.badIndex(file: indexPath, problem: "weight_map entry for '\(tensor)' must be a plain file name")
            }
            shardNames[tensor] = f
        }
        var shards: [String: SafetensorsFile] = [:]
        for f in Set(shardNames.values).sorted() {
            let p = joinPath(dir, f)
            guard Files.exists(p) else {
                throw SafetensorsError.badIndex(file: indexPath, problem: "shard '\(f)' listed in weight_map does not exist")
            }
            shards[f] = try SafetensorsFile(path: p)
        }
        for (tensor, f) in shardNames where shards[f]?.tensors[tensor] == nil {
            throw SafetensorsError.badIndex(file: indexPath, problem: "weight_map says '\(tensor)' is in \(f), but it is not")
        }
        try self.init(files: shards.keys.sorted().map { shards[$0]! })
    }

    public init(files: [SafetensorsFile]) throws {
        var index: [String: SafetensorsTensor] = [:]
        for f in files {
            for (name, t) in f.tensors {
                if let prev = index[name] {
                    throw SafetensorsError.badIndex(file: f.file.path, problem: "tensor '\(name)' appears in both \(prev.file.path) and \(f.file.path)")
                }
                index[name] = t
            }
        }
        self.files = files
        self.index = index
    }

    public func tensor(_ name: String) -> SafetensorsTensor? { index[name] }

    /// The tensor as Float32, checked against the expected shape.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        guard let t = index[name] else {
            throw SafetensorsError.missingTensor(name: name, files: files.map { $0.file.path })
        }
        guard t.shape == shape else {
            throw SafetensorsError.badEntry(file: t.file.path, tensor: name, problem: "shape \(t.shape), expected \(shape) from config.json")
        }
        let values = try t.floats()
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw SafetensorsError.nonFinite(file: t.file.path, tensor: name, index: i, value: values[i])
        }
        return values
    }
}
