@testable import QsentTokenizer
import XCTest

/// The stored form of the WordPiece table (the .qsent blob's `tokenizer.pieces`): a round trip
/// gives the same table and the same tokens, and a damaged table is refused before any lookup
/// could index out of bounds or probe forever.
final class PieceTableTests: XCTestCase {
    let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##believ", "##able", "the", "film", "##s", "!", "na", "##ïve", "东"]

    func tokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabulary: vocabulary, settings: TokenizerSettings())
    }

    func testRoundTripGivesTheSameTableAndTokens() throws {
        let built = try tokenizer()
        let table = try PieceTable(parts: built.pieces.parts, vocabularyCount: vocabulary.count)
        XCTAssertEqual(table, built.pieces)
        let list = try PieceList(bytes: built.pieceList.bytes, ends: built.pieceList.ends)
        XCTAssertEqual(list.strings, vocabulary)
        let stored = try WordPieceTokenizer(pieces: list, table: table, settings: TokenizerSettings(), source: "test")
        for t in ["Unbelievable films!", "the naïve film", "东 the unbelievables", "xyzzy"] {
            XCTAssertEqual(stored.encode(t), built.encode(t), t)
        }
    }

    func testDamagedTablesAreRefused() throws {
        let good = try tokenizer().pieces.parts
        func refused(_ change: (inout PieceTable.Parts) -> Void, _ what: String) {
            var p = good
            change(&p)
            XCTAssertNotNil(PieceTable.problem(p, vocabularyCount: vocabulary.count), what)
            XCTAssertThrowsError(try PieceTable(parts: p, vocabularyCount: vocabulary.count), what)
        }
        XCTAssertNil(PieceTable.problem(good, vocabularyCount: vocabulary.count))
        refused({ $0.slots.removeLast() }, "slot count not a power of two")
        refused({ $0.filter.removeLast() }, "filter size not a power of two")
        refused({ p in p.slots = p.slots.map { $0 == 0 ? (UInt64(1) << 32 | 1) : $0 } }, "no empty slot")
        let used = good.slots.firstIndex { $0 != 0 }!
        refused({ $0.slots[used] = $0.slots[used] & ~0xFFFF_FFFF | UInt64($0.entries.count) }, "entry offset outside")
        refused({ $0.entries.removeLast() }, "last key runs past the entries")
        refused({ $0.maxStartLength = 1; $0.maxContinuationLength = 1 }, "key longer than the recorded maximum")
        XCTAssertNotNil(PieceTable.problem(good, vocabularyCount: 3), "ids not below the vocabulary size")
    }

    func testPieceListRefusesBadRangesAndUTF8() {
        XCTAssertThrowsError(try PieceList(bytes: Array("abc".utf8), ends: [2, 1]))
        XCTAssertThrowsError(try PieceList(bytes: Array("abc".utf8), ends: [4]))
        // "é" split across two pieces: the whole buffer is UTF-8, neither piece is.
        XCTAssertThrowsError(try PieceList(bytes: Array("é".utf8), ends: [1, 2]))
        XCTAssertThrowsError(try PieceList(bytes: [0xED, 0xA0, 0x80], ends: [3]), "surrogate")
        XCTAssertThrowsError(try PieceList(bytes: [0xC0, 0x80], ends: [2]), "overlong")
        XCTAssertNoThrow(try PieceList(bytes: Array("aé东😀".utf8), ends: [1, 3, 6, 10]))
    }
}
