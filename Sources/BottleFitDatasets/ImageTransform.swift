import BottleFitCore
import BottleFitImaging

/// One step of a per-sample transform pipeline: an 8-bit image in, an 8-bit image out.
///
/// A transform is a value you call. Its randomness comes only from the generator it is
/// handed (the sample's own, see `DataRandomness`), so a sample's result depends only on
/// the seed, the epoch and the sample's index. A transform draws the same count of numbers
/// whatever the outcome where it can (a flip draws one whether it flips or not), so steps
/// after it do not shift with its decisions.
public protocol ImageTransform: Sendable {
    /// Whether the result depends on the generator (augmentation) or not (evaluation).
    var isRandom: Bool { get }
    /// The size of the images this produces from images of `input` (`nil`: varies).
    func outputSize(for input: ImageSize?) -> ImageSize?
    /// Applies the transform, drawing from `random`.
    func callAsFunction(_ image: Image, using random: inout SeededGenerator) -> Image
}
