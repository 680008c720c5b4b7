// This file imports Socket2 and SystemPackage both: `Errno` names one type, never ambiguous.
import Socket2
import SystemPackage
import Testing

@Suite struct ErrnoWithSystemPackageTests {
    @Test func errnoIsOneTypeWithBothImports() {
        var caught: Errno?
        do throws(Errno) {
            _ = try receiveFromEmpty()
        } catch .resourceTemporarilyUnavailable {
            caught = .resourceTemporarilyUnavailable
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(caught == SystemPackage.Errno.wouldBlock)
        let fromSystem: SystemPackage.Errno = .invalidArgument
        let unqualified: Errno = fromSystem
        #expect(unqualified == .invalidArgument)
    }
}
