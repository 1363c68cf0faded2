import Foundation
import Synchronization

/// Ctrl-C during a sweep: the first SIGINT asks the sweep to stop after the shape it is measuring (its rows are
/// then written whole); it also restores the default action, so a second Ctrl-C ends the process at once. Either way
/// the CSV holds only complete rows, because each shape's rows go out in one write.
enum SweepInterrupt {
    /// Lock-free, so the signal handler may set it.
    private static let flag = Atomic<Bool>(false)

    static var requested: Bool { flag.load(ordering: .acquiring) }

    static func install() {
        // A parent may have blocked SIGINT (blocked masks survive exec); unblock it so Ctrl-C reaches us.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in
            SweepInterrupt.flag.store(true, ordering: .releasing)
            signal(SIGINT, SIG_DFL)
        }
    }
}
