import XCTest

final class QuantizerTestsPlaceholder: XCTestCase {}
