import BottleFitCore

/// Where every random number of a loader comes from, so an epoch's batches depend only on
/// the seed and the epoch, never on thread timing, batch size or the number of workers.
///
/// The shuffle of an epoch comes from `(seed, epoch)`; the augmentation of a sample from its
/// own generator, seeded by `(seed, epoch, sample index)` (the dataset index, not its position
/// in the batch). Both are hashed with SplitMix64's finaliser, and the integer and float draws
/// are written out here instead of taken from the standard library, whose algorithms for
/// `shuffle(using:)` and `random(in:using:)` are not promised to stay the same.
public enum DataRandomness {
    /// The generator for the transforms of sample `index` in `epoch`.
    public static func generator(seed: UInt64, epoch: Int, sample index: Int) -> SeededGenerator {
        SeededGenerator(seed: hash(seed, 0x5341_4D50_4C45, UInt64(bitPattern: Int64(epoch)), UInt64(bitPattern: Int64(index))))
    }

    /// The order of the samples in `epoch`: a Fisher–Yates shuffle of `0..<count`.
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var random = SeededGenerator(seed: hash(seed, 0x5348_5546_464C_45, UInt64(bitPattern: Int64(epoch))))
        var order = Array(0..<count)
        var i = count - 1
        while i > 0 {
            order.swapAt(i, random.integer(below: i + 1))
            i -= 1
        }
        return order
    }

    /// Folds the words into one seed, each through SplitMix64's finaliser.
    static func hash(_ words: UInt64...) -> UInt64 {
        var h: UInt64 = 0
        for word in words { h = mix(h ^ word) }
        return h
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SeededGenerator {
    /// A uniform Double in [0, 1), 53 bits.
    mutating func unitDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform Double in `range` (torch's `uniform_(a, b)`: a + (b - a) * u).
    mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * unitDouble()
    }

    /// A uniform integer in `0..<bound`, unbiased (Lemire's multiply-and-reject).
    mutating func integer(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let b = UInt64(bound)
        var product = next().multipliedFullWidth(by: b)
        if product.low < b {
            let threshold = (0 &- b) % b
            while product.low < threshold { product = next().multipliedFullWidth(by: b) }
        }
        return Int(product.high)
    }
}
