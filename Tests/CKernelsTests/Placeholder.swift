import XCTest

final class CKernelsTestsPlaceholder: XCTestCase {}
