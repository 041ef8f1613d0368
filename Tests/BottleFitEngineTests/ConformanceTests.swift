import BottleFitEngine
import Foundation
import Testing

/// Every ONNX backend node case of Debian's libonnx-testdata for the operators the engine
/// supports must pass; the cases of supported operators that are skipped are listed here.
@Suite struct ConformanceTests {
    static let root = URL(fileURLWithPath: "/usr/share/libonnx-testdata/data/node")

    /// Cases of supported operators that use something deliberately out of scope.
    static let explicitSkips: [String: String] = [
        "test_averagepool_3d_default": "3-D windows",
        "test_batchnorm_epsilon_training_mode": "training-mode batch norm",
        "test_batchnorm_example_training_mode": "training-mode batch norm",
        "test_cast_BFLOAT16_to_FLOAT": "Cast to or from a type the engine lacks",
        "test_cast_DOUBLE_to_FLOAT": "Cast to or from a type the engine lacks",
        "test_cast_DOUBLE_to_FLOAT16": "Cast to or from a type the engine lacks",
        "test_cast_FLOAT16_to_DOUBLE": "Cast to or from a type the engine lacks",
        "test_cast_FLOAT16_to_FLOAT": "Cast to or from a type the engine lacks",
        "test_cast_FLOAT_to_BFLOAT16": "Cast to or from a type the engine lacks",
        "test_cast_FLOAT_to_DOUBLE": "Cast to or from a type the engine lacks",
        "test_cast_FLOAT_to_FLOAT16": "Cast to or from a type the engine lacks",
        "test_cast_FLOAT_to_STRING": "Cast to or from a type the engine lacks",
        "test_cast_STRING_to_FLOAT": "Cast to or from a type the engine lacks",
        "test_castlike_BFLOAT16_to_FLOAT_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_DOUBLE_to_FLOAT16_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_DOUBLE_to_FLOAT_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_FLOAT16_to_DOUBLE_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_FLOAT16_to_FLOAT_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_FLOAT_to_BFLOAT16_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_FLOAT_to_DOUBLE_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_FLOAT_to_FLOAT16_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_FLOAT_to_STRING_expanded": "Cast to or from a type the engine lacks",
        "test_castlike_STRING_to_FLOAT_expanded": "Cast to or from a type the engine lacks",
        "test_clip_default_int8_inbounds": "int8 tensors",
        "test_clip_default_int8_max": "int8 tensors",
        "test_clip_default_int8_min": "int8 tensors",
        "test_convtranspose_3d": "3-D windows",
        "test_dropout_default_mask": "BOOL tensors (dropout mask, training mode)",
        "test_dropout_default_mask_ratio": "BOOL tensors (dropout mask, training mode)",
        "test_edge_pad": "INT32 tensors",
        "test_identity_opt": "optional and sequence types",
        "test_identity_sequence": "optional and sequence types",
        "test_maxpool_2d_uint8": "uint8 pooling",
        "test_maxpool_3d_default": "3-D windows",
        "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool Indices output",
        "test_maxpool_with_argmax_2d_precomputed_strides": "MaxPool Indices output",
        "test_pow_types_float": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_float32_int32": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_float32_int64": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_float32_uint32": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_float32_uint64": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_int": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_int32_float32": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_int32_int32": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_int64_float32": "Pow on integer tensors (the engine's Pow is float32)",
        "test_pow_types_int64_int64": "Pow on integer tensors (the engine's Pow is float32)",
        "test_reduce_log_sum_exp_default_axes_keepdims_example": "DOUBLE tensors",
        "test_reduce_log_sum_exp_default_axes_keepdims_random": "DOUBLE tensors",
        "test_reduce_log_sum_exp_do_not_keepdims_example": "DOUBLE tensors",
        "test_reduce_log_sum_exp_do_not_keepdims_random": "DOUBLE tensors",
        "test_reduce_log_sum_exp_keepdims_example": "DOUBLE tensors",
        "test_reduce_log_sum_exp_keepdims_random": "DOUBLE tensors",
        "test_reduce_log_sum_exp_negative_axes_keepdims_example": "DOUBLE tensors",
        "test_reduce_log_sum_exp_negative_axes_keepdims_random": "DOUBLE tensors",
        "test_reflect_pad": "INT32 tensors",
        "test_resize_downsample_scales_cubic": "Resize mode cubic",
        "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside": "Resize mode cubic",
        "test_resize_downsample_scales_cubic_align_corners": "Resize mode cubic",
        "test_resize_downsample_sizes_cubic": "Resize mode cubic",
        "test_resize_tf_crop_and_resize": "Resize tf_crop_and_resize",
        "test_resize_upsample_scales_cubic": "Resize mode cubic",
        "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside": "Resize mode cubic",
        "test_resize_upsample_scales_cubic_align_corners": "Resize mode cubic",
        "test_resize_upsample_scales_cubic_asymmetric": "Resize mode cubic",
        "test_resize_upsample_sizes_cubic": "Resize mode cubic",
        "test_training_dropout": "BOOL tensors (dropout mask, training mode)",
        "test_training_dropout_default": "BOOL tensors (dropout mask, training mode)",
        "test_training_dropout_default_mask": "BOOL tensors (dropout mask, training mode)",
        "test_training_dropout_mask": "BOOL tensors (dropout mask, training mode)",
        "test_training_dropout_zero_ratio": "BOOL tensors (dropout mask, training mode)",
        "test_training_dropout_zero_ratio_mask": "BOOL tensors (dropout mask, training mode)",
    ]

    @Test func allSupportedCasesPass() throws {
        let cases = try ConformanceRunner.discover([Self.root])
        #expect(cases.count > 800, "libonnx-testdata should hold the full node suite")
        let runner = ConformanceRunner()
        let supported = Set(InferenceSession.supportedOperators)
        var passed = 0
        var unexpectedSkips: [String] = []
        for c in cases {
            let name = c.lastPathComponent
            switch runner.run(c) {
            case .passed:
                passed += 1
            case .failed(let why):
                Issue.record("\(name) failed: \(why)")
            case .skipped(let why):
                if Self.explicitSkips[name] != nil { continue }
                // A skip is expected only when the case needs an operator the engine lacks.
                let needsUnsupportedOp = why.hasPrefix("unsupported operator ")
                    && !supported.contains(String(why.dropFirst("unsupported operator ".count).prefix { $0 != " " }))
                if !needsUnsupportedOp { unexpectedSkips.append("\(name): \(why)") }
            }
        }
        #expect(unexpectedSkips.isEmpty, "skipped outside the explicit list: \(unexpectedSkips)")
        #expect(passed >= 340)
    }

    @Test func explicitSkipsAreStillSkipped() throws {
        let runner = ConformanceRunner()
        for name in Self.explicitSkips.keys.sorted() {
            let outcome = runner.run(Self.root.appendingPathComponent(name))
            guard case .skipped = outcome else {
                Issue.record("\(name) is listed as skipped but was \(outcome); remove it from the list")
                continue
            }
        }
    }
}
