import BottleFitCore
import Foundation
import Testing

@Suite struct NPYTests {
    @Test func floatRoundTrip() throws {
        let t = Tensor(shape: [2, 3, 4], floats: (0..<24).map { Float($0) * 0.5 - 3 })
        let data = NPY.encode(t)
        // The data starts on a 64-byte boundary, as NumPy writes it.
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        #expect(try NPY.decode(data) == t)
    }

    @Test func scalarAndOtherTypes() throws {
        #expect(try NPY.decode(NPY.encode(Tensor(shape: [], floats: [4]))) == Tensor(shape: [], floats: [4]))
        let b = Tensor(shape: [5], bytes: [0, 1, 2, 254, 255])
        #expect(try NPY.decode(NPY.encode(b)) == b)
        let l = Tensor(shape: [1, 2], int64s: [-5, 1 << 40])
        #expect(try NPY.decode(NPY.encode(l)) == l)
    }

    @Test func malformedFilesAreClearErrors() {
        #expect(throws: NPYError.self) { try NPY.decode(Data("not numpy".utf8)) }
        var truncated = NPY.encode(Tensor(shape: [4], floats: [1, 2, 3, 4]))
        truncated.removeLast(3)
        #expect(throws: NPYError.self) { try NPY.decode(truncated) }
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }"
        var f8 = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count + 1), 0])
        f8.append(contentsOf: Array((header + "\n").utf8))
        f8.append(contentsOf: [UInt8](repeating: 0, count: 8))
        do {
            _ = try NPY.decode(f8)
            Issue.record("float64 accepted")
        } catch {
            #expect(error.description.contains("<f8"))
        }
        let fortran = "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }"
        var fo = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(fortran.utf8.count + 1), 0])
        fo.append(contentsOf: Array((fortran + "\n").utf8))
        fo.append(contentsOf: [UInt8](repeating: 0, count: 4))
        #expect(throws: NPYError.self) { try NPY.decode(fo) }
        let huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }"
        var hg = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(huge.utf8.count + 1), 0])
        hg.append(contentsOf: Array((huge + "\n").utf8))
        #expect(throws: NPYError.self) { try NPY.decode(hg) }
    }
}
