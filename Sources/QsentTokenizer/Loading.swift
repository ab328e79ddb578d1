// Loading a WordPiece tokenizer from Hugging Face files:
//   tokenizer.json                            (the fast tokenizer's own description)
//   vocab.txt + tokenizer_config.json         (what BertTokenizerFast converts from)
// Anything that is not BertNormalizer + BertPreTokenizer + WordPiece + [CLS] $A [SEP] is refused.

import QsentIO

extension WordPieceTokenizer {
    /// Loads from a model folder: `tokenizer.json` if present, else `vocab.txt` with the
    /// optional `tokenizer_config.json`.
    public static func load(directory: String) throws -> WordPieceTokenizer {
        let kind: Files.Kind?
        do { kind = try Files.kind(directory) } catch {
            throw TokenizerError.unreadableFile(path: directory, reason: "\(error)")
        }
        guard let kind else { throw TokenizerError.fileNotFound(path: directory) }
        guard kind == .directory else {
            throw TokenizerError.unreadableFile(path: directory, reason: "not a directory")
        }
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        let json = base + "tokenizer.json"
        if Files.exists(json) { return try load(tokenizerJSON: json) }
        let vocab = base + "vocab.txt"
        if Files.exists(vocab) {
            let config = base + "tokenizer_config.json"
            return try load(vocabTXT: vocab, tokenizerConfig: Files.exists(config) ? config : nil)
        }
        throw TokenizerError.noTokenizerFiles(directory: directory)
    }

    /// Loads a Hugging Face `tokenizer.json` (BertNormalizer, BertPreTokenizer, WordPiece,
    /// TemplateProcessing or BertProcessing with single `[CLS] $A [SEP]`).
    public static func load(tokenizerJSON path: String) throws -> WordPieceTokenizer {
        let file = try readJSON(path)
        guard case .object = file else { throw TokenizerError.malformedJSON(path: path, reason: "top level is not an object") }

        // model
        guard let model = file["model"], !model.isNull else { throw TokenizerError.missingField(path: path, field: "model") }
        guard case .object = model else { throw TokenizerError.missingField(path: path, field: "model") }
        guard let type = model["type"]?.string else { throw TokenizerError.missingField(path: path, field: "model.type") }
        guard type == "WordPiece" else {
            throw TokenizerError.unsupported(path: path, what: "model.type is \"\(type)\", not \"WordPiece\"")
        }
        guard case .object(let vocabJSON)? = model["vocab"] else { throw TokenizerError.missingField(path: path, field: "model.vocab") }
        var vocabObject: [String: Int] = [:]
        vocabObject.reserveCapacity(vocabJSON.count)
        for (piece, v) in vocabJSON {
            guard let id = v.int else {
                throw TokenizerError.invalidVocabulary(path: path, reason: "model.vocab.\(piece) is not an integer id")
            }
            vocabObject[piece] = id
        }
        guard !vocabObject.isEmpty else { throw TokenizerError.emptyVocabulary(path: path) }
        var vocabulary = [String?](repeating: nil, count: vocabObject.count)
        for (piece, id) in vocabObject {
            guard id >= 0 && id < vocabulary.count else {
                throw TokenizerError.invalidVocabulary(
                    path: path, reason: "model.vocab[\(piece)] = \(id) is outside 0..<\(vocabulary.count); ids must be dense")
            }
            guard vocabulary[id] == nil else {
                throw TokenizerError.invalidVocabulary(path: path, reason: "id \(id) is used by two pieces")
            }
            vocabulary[id] = piece
        }
        let root = file
        let modelValue = model
        let unk = try optionalString(modelValue, "unk_token", "model.unk_token", path) ?? "[UNK]"
        let prefix = try optionalString(modelValue, "continuing_subword_prefix", "model.continuing_subword_prefix", path) ?? "##"
        var maxChars = 100
        if let v = modelValue["max_input_chars_per_word"], !v.isNull {
            guard let m = v.int else { throw TokenizerError.missingField(path: path, field: "model.max_input_chars_per_word") }
            maxChars = m
        }

        // normalizer
        var lowercase = false, strip: Bool? = false, clean = false, chinese = false
        if let norm = root["normalizer"], !norm.isNull {
            guard let ntype = norm["type"]?.string else { throw TokenizerError.missingField(path: path, field: "normalizer.type") }
            guard ntype == "BertNormalizer" else {
                throw TokenizerError.unsupported(path: path, what: "normalizer.type is \"\(ntype)\", not \"BertNormalizer\"")
            }
            clean = try optionalBool(norm, "clean_text", "normalizer.clean_text", path) ?? true
            chinese = try optionalBool(norm, "handle_chinese_chars", "normalizer.handle_chinese_chars", path) ?? true
            lowercase = try optionalBool(norm, "lowercase", "normalizer.lowercase", path) ?? true
            strip = try optionalBool(norm, "strip_accents", "normalizer.strip_accents", path)
        }

        // pre-tokenizer
        guard let pre = root["pre_tokenizer"], !pre.isNull else {
            throw TokenizerError.unsupported(path: path, what: "pre_tokenizer is missing or null, expected BertPreTokenizer")
        }
        guard let ptype = pre["type"]?.string else { throw TokenizerError.missingField(path: path, field: "pre_tokenizer.type") }
        guard ptype == "BertPreTokenizer" else {
            throw TokenizerError.unsupported(path: path, what: "pre_tokenizer.type is \"\(ptype)\", not \"BertPreTokenizer\"")
        }

        // added tokens
        var added: [AddedToken] = []
        if let list = root["added_tokens"], !list.isNull {
            guard case .array(let items) = list else { throw TokenizerError.missingField(path: path, field: "added_tokens") }
            for item in items {
                guard let content = item["content"]?.string, let id = item["id"]?.int else {
                    throw TokenizerError.missingField(path: path, field: "added_tokens[].content/id")
                }
                for flag in ["single_word", "lstrip", "rstrip"] where item[flag]?.bool == true {
                    throw TokenizerError.unsupported(path: path, what: "added token \(content) has \(flag) = true")
                }
                if item["normalized"]?.bool == true {
                    throw TokenizerError.unsupported(path: path, what: "added token \(content) has normalized = true")
                }
                guard id < vocabulary.count, vocabulary[id] == content else {
                    throw TokenizerError.invalidVocabulary(
                        path: path, reason: "added token \(content) has id \(id), which is not its id in model.vocab")
                }
                added.append(AddedToken(content: content))
            }
        }

        // post-processor: [CLS] $A [SEP]
        guard let post = root["post_processor"], !post.isNull else {
            throw TokenizerError.unsupported(path: path, what: "post_processor is null; qsent needs [CLS] $A [SEP]")
        }
        let (cls, sep) = try parsePostProcessor(post, path: path)
        var settings = TokenizerSettings(
            lowercase: lowercase, stripAccents: strip, cleanText: clean, handleChineseChars: chinese,
            unkToken: unk, clsToken: cls.token, sepToken: sep.token, padToken: "[PAD]",
            continuingSubwordPrefix: prefix, maxInputCharsPerWord: maxChars, addedTokens: added)
        if let pad = root["padding"]?["pad_token"]?.string { settings.padToken = pad }
        let vocab = vocabulary.map { $0! }
        guard vocabObject[unk] != nil else { throw TokenizerError.missingSpecialToken(path: path, token: unk, role: "model.unk_token") }
        for (t, role) in [(cls, "post_processor [CLS]"), (sep, "post_processor [SEP]")] {
            guard let vid = vocabObject[t.token] else { throw TokenizerError.missingSpecialToken(path: path, token: t.token, role: role) }
            guard vid == t.id else {
                throw TokenizerError.invalidVocabulary(path: path, reason: "\(role) \(t.token) has id \(t.id) but model.vocab says \(vid)")
            }
        }
        return try WordPieceTokenizer(vocabulary: vocab, settings: settings, source: path)
    }

    private static func parsePostProcessor(_ post: HFJSON, path: String) throws -> ((token: String, id: Int), (token: String, id: Int)) {
        guard let type = post["type"]?.string else { throw TokenizerError.missingField(path: path, field: "post_processor.type") }
        switch type {
        case "BertProcessing":
            func pair(_ key: String) throws -> (token: String, id: Int) {
                guard case .array(let a)? = post[key], a.count == 2, let t = a[0].string, let i = a[1].int else {
                    throw TokenizerError.missingSpecialToken(path: path, token: key == "cls" ? "[CLS]" : "[SEP]", role: "post_processor.\(key)")
                }
                return (t, i)
            }
            return (try pair("cls"), try pair("sep"))
        case "TemplateProcessing":
            guard case .array(let single)? = post["single"] else { throw TokenizerError.missingField(path: path, field: "post_processor.single") }
            func special(_ v: HFJSON) -> String? { v["SpecialToken"]?["id"]?.string }
            guard single.count == 3, let clsName = special(single[0]), single[1]["Sequence"]?["id"]?.string == "A",
                let sepName = special(single[2])
            else {
                throw TokenizerError.unsupported(path: path, what: "post_processor.single is not the template [CLS] $A [SEP]")
            }
            func lookup(_ name: String) throws -> (token: String, id: Int) {
                guard let st = post["special_tokens"]?[name], case .array(let ids)? = st["ids"], ids.count == 1,
                    let id = ids[0].int
                else {
                    throw TokenizerError.missingSpecialToken(path: path, token: name, role: "post_processor.special_tokens")
                }
                return (name, id)
            }
            return (try lookup(clsName), try lookup(sepName))
        default:
            throw TokenizerError.unsupported(path: path, what: "post_processor.type is \"\(type)\", expected TemplateProcessing or BertProcessing")
        }
    }

    /// Loads `vocab.txt` (one piece per line, id = line number) with the settings of
    /// `tokenizer_config.json` (do_lower_case, strip_accents, tokenize_chinese_chars, special
    /// tokens), as transformers' BertTokenizerFast converter does. Without a config the
    /// `bert-base-uncased` defaults apply.
    public static func load(vocabTXT path: String, tokenizerConfig configPath: String?) throws -> WordPieceTokenizer {
        let data = try readFile(path)
        // Rust BufRead::lines (split on \n, a final line without \n counts) + trim_end, as
        // tokenizers' WordPiece::read_file. Split bytes: in Swift "\r\n" is one Character.
        guard let text = String(validating: data, as: UTF8.self) else {
            throw TokenizerError.unreadableFile(path: path, reason: "not UTF-8 text")
        }
        var lines: [String] = []
        for raw in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            var line = Substring(raw)  // splits at '\n' are scalar boundaries
            while let last = line.unicodeScalars.last, last.properties.isWhitespace {
                line.unicodeScalars.removeLast()
            }
            lines.append(String(line))
        }
        if text.utf8.last == 0x0A { lines.removeLast() }
        if lines.isEmpty || lines.allSatisfy({ $0.isEmpty }) { throw TokenizerError.emptyVocabulary(path: path) }

        var settings = TokenizerSettings()
        if let configPath {
            let config = try readJSON(configPath)
            guard case .object = config else {
                throw TokenizerError.malformedJSON(path: configPath, reason: "top level is not an object")
            }
            if let cls = config["tokenizer_class"]?.string {
                let known = ["BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "MobileBertTokenizer", "SqueezeBertTokenizer"]
                guard known.contains(cls) || known.contains(where: { $0 + "Fast" == cls }) else {
                    throw TokenizerError.unsupported(path: configPath, what: "tokenizer_class is \(cls), not a BERT WordPiece tokenizer")
                }
            }
            if config["do_basic_tokenize"]?.bool == false {
                throw TokenizerError.unsupported(path: configPath, what: "do_basic_tokenize = false")
            }
            let lower = try optionalBool(config, "do_lower_case", "do_lower_case", configPath) ?? true
            let strip = try optionalBool(config, "strip_accents", "strip_accents", configPath)
            let chinese = try optionalBool(config, "tokenize_chinese_chars", "tokenize_chinese_chars", configPath) ?? true
            func special(_ key: String, _ def: String?) throws -> String? {
                guard let v = config[key], !v.isNull else { return def }
                if let s = v.string { return s }
                if let s = v["content"]?.string { return s }
                throw TokenizerError.missingField(path: configPath, field: key)
            }
            let unk = try special("unk_token", "[UNK]")!
            let cls = try special("cls_token", "[CLS]")!
            let sep = try special("sep_token", "[SEP]")!
            let pad = try special("pad_token", "[PAD]")!
            let mask = try special("mask_token", "[MASK]")
            settings = TokenizerSettings(
                lowercase: lower, stripAccents: strip, cleanText: true, handleChineseChars: chinese,
                unkToken: unk, clsToken: cls, sepToken: sep, padToken: pad, maskToken: mask)
            if case .object(let decoderMap)? = config["added_tokens_decoder"] {
                var added: [(Int, AddedToken)] = []
                for (key, item) in decoderMap {
                    guard let id = Int(key), let content = item["content"]?.string else {
                        throw TokenizerError.missingField(path: configPath, field: "added_tokens_decoder[\(key)].content")
                    }
                    for flag in ["single_word", "lstrip", "rstrip"] where item[flag]?.bool == true {
                        throw TokenizerError.unsupported(path: configPath, what: "added token \(content) has \(flag) = true")
                    }
                    if item["normalized"]?.bool == true {
                        throw TokenizerError.unsupported(path: configPath, what: "added token \(content) has normalized = true")
                    }
                    added.append((id, AddedToken(content: content)))
                }
                settings.addedTokens = added.sorted { $0.0 < $1.0 }.map { $0.1 }
            }
            if case .array(let extra)? = config["additional_special_tokens"] {
                for item in extra {
                    guard let content = item.string ?? item["content"]?.string else {
                        throw TokenizerError.missingField(path: configPath, field: "additional_special_tokens")
                    }
                    if !settings.addedTokens.contains(AddedToken(content: content)) {
                        settings.addedTokens.append(AddedToken(content: content))
                    }
                }
            }
        }
        return try WordPieceTokenizer(vocabulary: lines, settings: settings, source: path)
    }

    // MARK: helpers

    static func readFile(_ path: String) throws -> [UInt8] {
        let kind: Files.Kind?
        do { kind = try Files.kind(path) } catch {
            throw TokenizerError.unreadableFile(path: path, reason: "\(error)")
        }
        guard let kind else { throw TokenizerError.fileNotFound(path: path) }
        if kind == .directory { throw TokenizerError.unreadableFile(path: path, reason: "is a directory") }
        // A FIFO or device would block the read or never end: regular files only.
        guard kind == .regular else {
            throw TokenizerError.unreadableFile(path: path, reason: "is not a regular file (it is \(kind))")
        }
        do {
            return try Files.readRegularFile(path)
        } catch {
            throw TokenizerError.unreadableFile(path: path, reason: "\(error)")
        }
    }

    /// Reads and parses a JSON file; syntax errors (and truncation, invalid UTF-8, a duplicate
    /// key) become `.malformedJSON`.
    static func readJSON(_ path: String) throws -> HFJSON {
        let data = try readFile(path)
        do {
            return try HFJSON.parse(data)
        } catch {
            throw TokenizerError.malformedJSON(path: path, reason: "\(error)")
        }
    }

    private static func optionalBool(_ obj: HFJSON, _ key: String, _ field: String, _ path: String) throws -> Bool? {
        guard let v = obj[key], !v.isNull else { return nil }
        guard let b = v.bool else { throw TokenizerError.missingField(path: path, field: field) }
        return b
    }

    private static func optionalString(_ obj: HFJSON, _ key: String, _ field: String, _ path: String) throws -> String? {
        guard let v = obj[key], !v.isNull else { return nil }
        guard let s = v.string else { throw TokenizerError.missingField(path: path, field: field) }
        return s
    }
}
