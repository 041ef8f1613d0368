/// A long-running role whose loop blocks on sockets and so runs on a thread of its own: the
/// broker, a tail worker, the controller, a camera. `RoleService` runs any of them the same way.
public protocol ThreadedRole: AnyObject, Sendable {
    /// Loads what the role needs, makes its sockets and starts its loop thread; returns once it
    /// serves, or throws why it cannot. It blocks (model loading can take seconds), so
    /// `RoleService` calls it on a thread of its own, never on Swift's cooperative pool.
    func startServing() throws

    /// Asks the loop to drain and stop: take no new work, finish or hand back what is in flight,
    /// say goodbye to its peers, close its sockets. Returns at once. A request that comes before
    /// `startServing` is kept: the loop then drains as soon as it runs.
    func requestStop()

    /// Blocks until the loop has stopped and its thread has released its sockets; returns at once
    /// if the role never started.
    func waitForStop()
}
