/// LeakSanitizer's exit check, off for the test process only (Tests/sanitize.sh address).
///
/// LSan calls `__lsan_is_turned_off()` at exit if the program defines it, and skips its leak
/// check when it returns non-zero. The test bundle is the one program that defines it: at its
/// exit LSan would list XCTest's own never-freed allocations (test-case instances, weak
/// references made by XCTest), and a suppression that names XCTest's frames would hide every
/// leak of the code under test too, since those frames are on the stack of every test. The
/// processes the tests spawn — qsentd, qsent, qsent-quantize — do not define it, so each of them
/// is checked for leaks when it exits (docs/TESTING.md "Sanitizers"). Without a sanitizer
/// nothing calls this.
@_cdecl("__lsan_is_turned_off")
public func lsanIsTurnedOffInTheTestProcess() -> Int32 { 1 }
