import XCTest

final class QsentTokenizerTestsPlaceholder: XCTestCase {}
