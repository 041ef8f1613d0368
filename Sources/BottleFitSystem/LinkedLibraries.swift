import CBottleFitJPEG
import CBottleFitMsgPack
import CBottleFitOpenBLAS
import CBottleFitZMQ

/// Versions of the C libraries this build links (ZeroMQ, msgpack-c, libjpeg, OpenBLAS).
public enum LinkedLibraries {
    /// The corresponding C function is `zmq_version`.
    public static var zeroMQ: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    /// The corresponding C function is `msgpack_version`.
    public static var msgpack: String { String(cString: msgpack_version()) }

    /// libjpeg's compile-time version (`JPEG_LIB_VERSION`) and the library's idea of it at run time.
    public static var jpeg: String {
        var info = jpeg_decompress_struct()
        var err = jpeg_error_mgr()
        info.err = jpeg_std_error(&err)
        jpeg_CreateDecompress(&info, JPEG_LIB_VERSION, MemoryLayout<jpeg_decompress_struct>.size)
        defer { jpeg_destroy_decompress(&info) }
        return "\(JPEG_LIB_VERSION / 10).\(JPEG_LIB_VERSION % 10)"
    }

    /// The corresponding C functions are `openblas_get_config` and `openblas_get_corename`.
    public static var openBLAS: String {
        "\(String(cString: openblas_get_config())) (kernel \(String(cString: openblas_get_corename())))"
    }

    /// One line per library.
    public static var summary: String {
        "ZeroMQ \(zeroMQ)\nmsgpack-c \(msgpack)\nlibjpeg \(jpeg)\nOpenBLAS \(openBLAS)"
    }
}
