import XCTest

final class QsentCoreTestsPlaceholder: XCTestCase {}
