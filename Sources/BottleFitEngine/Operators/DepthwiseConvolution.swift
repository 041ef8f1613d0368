import CBottleFitKernels

/// Depthwise and grouped convolutions with few channels per group (MobileNet, EfficientNet,
/// MNASNet, ShuffleNet, ConvNeXt; RegNet's and ResNeXt's groups), computed directly, one
/// group at a time, in C (`bottlefit_group_conv`, built per instruction set): the group's
/// input is copied once into a zero-padded buffer split into column phases (so a strided tap
/// reads contiguous floats), then each block of up to 8 output channels by 16–64 columns keeps
/// its sums in registers over all taps and is finished with bias, residual and activation
/// (BN is already folded into the weights) as it is stored. No im2col, no GEMM per group.
/// The AVX2 build reads strides 1 and 2 straight from the input planes instead, in chunks of
/// 8 columns with masked loads at the row ends (no padded copy; see group_conv_body.h).
extension ConvOperator {
    /// Most input channels per group the direct kernel takes; wider groups (AlexNet's two)
    /// are GEMMs.
    static let directGroupChannels = 32

    /// Floats of padded input one thread needs for the direct kernel, or nil when the
    /// convolution is not grouped, its groups are too wide, or its kernel is wider than 16.
    static func directGroupScratchFloats(_ s: Shape) -> Int? {
        let cg = s.channels / s.groups
        guard s.groups > 1, cg <= directGroupChannels else { return nil }
        var geometry = groupGeometry(s.geometry)
        let floats = bottlefit_group_conv_scratch(&geometry, cg, s.geometry.output.h)
        return floats >= 0 ? floats : nil
    }

    static func groupGeometry(_ g: SpatialGeometry) -> bottlefit_depthwise_geometry {
        bottlefit_depthwise_geometry(
            input_height: g.input.h, input_width: g.input.w, output_width: g.output.w, kernel_height: g.kernel.h,
            kernel_width: g.kernel.w, stride_height: g.stride.h, stride_width: g.stride.w, dilation_height: g.dilation.h,
            dilation_width: g.dilation.w, pad_top: g.padTop, pad_left: g.padLeft)
    }
}

extension ConvKernel {
    /// Every (image, group) item through `bottlefit_group_conv`, the items split over the
    /// threads, each thread with its own padded-input buffer in the workspace.
    func executeDirectGroups(scratchFloats: Int, _ parallel: Parallel) {
        let g = s.geometry
        var geometry = ConvOperator.groupGeometry(g)
        let cg = s.channels / s.groups, mg = s.outChannels / s.groups
        let taps = cg * g.kernelArea
        let items = s.batch * s.groups, groups = s.groups, channels = s.channels, outChannels = s.outChannels
        let inArea = g.inputArea, outArea = g.outputArea, oh = g.output.h
        let parts = Swift.min(plannedThreads, parallel.threads)
        let input = input, output = output, weight = weight, bias = bias, residual = residual, workspace = workspace
        let isa = instructionSet.c, activation = activation.c
        withUnsafePointer(to: &geometry) { geometry in
            parallel.forEach(parts) { threads in
                for t in threads {
                    let scratch = workspace + t * scratchFloats
                    for item in (items * t / parts)..<(items * (t + 1) / parts) {
                        let n = item / groups, grp = item % groups
                        let out = (n * outChannels + grp * mg) * outArea
                        _ = bottlefit_group_conv(
                            isa, input + (n * channels + grp * cg) * inArea, cg, mg, weight + grp * mg * taps,
                            bias.map { $0 + grp * mg }, residual.map { $0 + out }, output + out, geometry, oh, activation, scratch)
                    }
                }
            }
        }
    }
}
