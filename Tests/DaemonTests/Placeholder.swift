import XCTest

final class DaemonTestsPlaceholder: XCTestCase {}
