import CBottleFitZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension ZMQSocket {
    // MARK: Sending

    /// Sends a multipart message, blocking until libzmq has queued it.
    /// Throws `EAGAIN` (`isWouldBlock`) only if `sendTimeout` is set and expires.
    /// The corresponding C function is `zmq_send`, once per frame with `ZMQ_SNDMORE` on all but the last.
    public func send(_ frames: [[UInt8]]) throws(ZMQError) {
        _ = try sendFrames(frames, firstFlags: 0)
    }

    /// Sends a multipart message without blocking. Returns `false`, having sent nothing, when the
    /// message cannot be queued now (high-water mark reached, or no peer for a DEALER/PUSH).
    /// The corresponding C function is `zmq_send` with `ZMQ_DONTWAIT`.
    public func trySend(_ frames: [[UInt8]]) throws(ZMQError) -> Bool {
        try sendFrames(frames, firstFlags: ZMQ_DONTWAIT)
    }

    private func sendFrames(_ frames: [[UInt8]], firstFlags: Int32) throws(ZMQError) -> Bool {
        let socket = try handle("zmq_send")
        guard !frames.isEmpty else {
            throw ZMQError(errno: EINVAL, operation: "zmq_send", message: "a message needs at least one frame")
        }
        for (index, frame) in frames.enumerated() {
            let more = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            // libzmq admits a multipart message as a whole once its first frame is queued, so only
            // the first frame can say "would block"; later frames are sent without ZMQ_DONTWAIT
            // so a message is never left half sent.
            let flags = (index == 0 ? firstFlags : 0) | more
            let rc = frame.withUnsafeBytes { bytes in
                sendOne(socket, bytes, flags: flags)
            }
            switch rc {
            case .sent: continue
            case .wouldBlock where index == 0 && firstFlags & ZMQ_DONTWAIT != 0: return false
            case .wouldBlock: throw ZMQError(errno: EAGAIN, operation: "zmq_send (frame \(index))")
            case .failed(let error): throw error
            }
        }
        return true
    }

    private enum SendOutcome { case sent, wouldBlock, failed(ZMQError) }

    /// One `zmq_send`, retried on `EINTR`.
    private func sendOne(_ socket: UnsafeMutableRawPointer, _ bytes: UnsafeRawBufferPointer, flags: Int32) -> SendOutcome {
        while true {
            if zmq_send(socket, bytes.baseAddress, bytes.count, flags) >= 0 { return .sent }
            let code = zmq_errno()
            if code == EINTR { continue }
            if code == EAGAIN { return .wouldBlock }
            return .failed(ZMQError(errno: code, operation: "zmq_send"))
        }
    }

    // MARK: Receiving

    /// Receives one multipart message, blocking until it arrives.
    /// Throws `EAGAIN` (`isWouldBlock`) if `receiveTimeout` is set and expires, and `EMSGSIZE`
    /// (`isMessageTooLarge`) if the message breaks `limits`; the rest of such a message is
    /// discarded, so the next receive starts at a message boundary.
    /// The corresponding C functions are `zmq_msg_recv` and `zmq_getsockopt(ZMQ_RCVMORE)`.
    public func receive(limits: ZMQReceiveLimits = .default) throws(ZMQError) -> [[UInt8]] {
        guard let frames = try receiveFrames(firstFlags: 0, limits: limits) else {
            throw ZMQError(errno: EAGAIN, operation: "zmq_msg_recv")
        }
        return frames
    }

    /// Receives one multipart message if one is waiting; `nil` if none is (`EAGAIN`).
    /// The corresponding C function is `zmq_msg_recv` with `ZMQ_DONTWAIT`.
    public func tryReceive(limits: ZMQReceiveLimits = .default) throws(ZMQError) -> [[UInt8]]? {
        try receiveFrames(firstFlags: ZMQ_DONTWAIT, limits: limits)
    }

    private func receiveFrames(firstFlags: Int32, limits: ZMQReceiveLimits) throws(ZMQError) -> [[UInt8]]? {
        let socket = try handle("zmq_msg_recv")
        var frames: [[UInt8]] = []
        var total = 0
        var violation: String?
        var isFirst = true
        var message = zmq_msg_t()
        if zmq_msg_init(&message) != 0 { throw ZMQError.last("zmq_msg_init") }
        defer { if zmq_msg_close(&message) != 0 { assertionFailure("zmq_msg_close failed") } }
        while true {
            // The parts of a multipart message arrive together, so after the first one a
            // blocking receive returns at once.
            let flags = isFirst ? firstFlags : 0
            let received = zmq_msg_recv(&message, socket, flags)
            if received < 0 {
                let code = zmq_errno()
                if code == EINTR { continue }
                if code == EAGAIN && flags & ZMQ_DONTWAIT != 0 { return nil }
                throw ZMQError(errno: code, operation: "zmq_msg_recv")
            }
            isFirst = false
            let size = zmq_msg_size(&message)
            if violation == nil {
                if frames.count >= limits.maxFrames {
                    violation = "message has more than \(limits.maxFrames) frames"
                } else if size > limits.maxBytes - total {
                    violation = "message exceeds \(limits.maxBytes) bytes"
                } else {
                    // Checked before copying, so an oversized frame is never duplicated into Swift memory.
                    let data = zmq_msg_data(&message)
                    frames.append(size == 0 || data == nil
                        ? [] : Array(UnsafeRawBufferPointer(start: data, count: size)))
                }
            }
            total += size
            if try !option(.receiveMore) { break }
        }
        if let violation {
            throw ZMQError(errno: EMSGSIZE, operation: "zmq_msg_recv", message: violation)
        }
        return frames
    }
}
