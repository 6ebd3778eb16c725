import Foundation
import TallyCore

/// A generator or fine-tuner that records the messages it rejected, including those that
/// failed no request (an external program's stray or malformed lines), so that the
/// conformance checks can report them. `BackendConformance` adds the check
/// `messages follow the protocol` for backends whose generator adopts this.
public protocol ViolationRecording {
    /// How many messages broke the protocol so far, and descriptions of the first few.
    var recordedViolations: (count: Int, descriptions: [String]) { get }
}

extension ExecGenerator: ViolationRecording {
    /// The exec connection's record (shared by the generator and fine-tuner of one backend).
    public var recordedViolations: (count: Int, descriptions: [String]) {
        (connection.violationCount, connection.violations.map(\.description))
    }
}

extension ExecFineTuner: ViolationRecording {
    /// The exec connection's record (shared by the generator and fine-tuner of one backend).
    public var recordedViolations: (count: Int, descriptions: [String]) {
        (connection.violationCount, connection.violations.map(\.description))
    }
}
