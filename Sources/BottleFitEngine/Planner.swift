import BottleFitCore

/// Makes an `ExecutionPlan`: infers every shape, folds what is constant (shape arithmetic
/// included), fuses residual additions into convolutions, assigns buffers by liveness
/// (a buffer is reused once its last reader has run), then builds the kernels.
struct Planner {
    let session: InferenceSession
    let graph: Graph
    let inputShapes: [[Int]]
    var constantInputs: [String: Tensor] = [:]

    /// A node that runs at inference time, with its planning context.
    struct Step {
        var node: Node
        var op: any Operator.Type
        var context: NodeContext
        var outputTypes: [ValueType]

        /// Makes the planning context follow the node after a fusion appended inputs (values
        /// computed at run time, so no constants) or changed what they name.
        mutating func refreshContext(types: [String: ValueType]) {
            context.node = node
            context.inputs = node.inputs.map { $0.isEmpty ? nil : types[$0] }
            context.constants += Array(repeating: nil, count: Swift.max(0, node.inputs.count - context.constants.count))
        }
    }

    /// Types of every value, constants known at plan time, and the steps left to run.
    struct Analysis {
        var types: [String: ValueType]
        var constants: [String: Tensor]
        var steps: [Step]
    }

    func analyze() throws(EngineError) -> Analysis {
        var types: [String: ValueType] = [:]
        var constants: [String: Tensor] = graph.initializers
        for (name, t) in graph.initializers { types[name] = ValueType(t.elementType, t.shape) }
        for (v, shape) in zip(graph.inputs, inputShapes) {
            if let declared = v.shape {
                guard declared.count == shape.count,
                    zip(declared, shape).allSatisfy({ d, n in d.fixedValue.map { $0 == n } ?? true }),
                    shape.allSatisfy({ $0 >= 0 })
                else {
                    throw .shapeMismatch("input '\(v.name)' declared \(v.shapeDescription), given \(shape.shapeDescription)")
                }
            }
            types[v.name] = ValueType(v.elementType, shape)
            constants[v.name] = constantInputs[v.name]
        }
        var steps: [Step] = []
        for node in graph.nodes {
            let op = try OperatorRegistry.lookup(node)
            let inTypes = node.inputs.map { $0.isEmpty ? nil : types[$0] }
            for (i, name) in node.inputs.enumerated() where !name.isEmpty && types[name] == nil {
                throw .invalidModel("node '\(node.name)' reads '\(name)' (input \(i)), which is not defined")
            }
            var ctx = NodeContext(
                node: node, inputs: inTypes, constants: node.inputs.map { $0.isEmpty ? nil : constants[$0] },
                opset: graph.opsetVersion)
            ctx.compute = session.compute
            // Plans made with constant input values may fold different weights: they prepare their own.
            ctx.prepared = constantInputs.isEmpty ? session.preparedWeights : nil
            let outTypes = try op.infer(ctx)
            let outputs = node.outputs
            let foldable =
                node.opType == "Shape"
                || zip(node.inputs, ctx.constants).allSatisfy { name, c in name.isEmpty || c != nil }
            if foldable {
                let values = try evaluate(op, ctx, outTypes)
                for (i, name) in outputs.enumerated() where !name.isEmpty && i < values.count {
                    constants[name] = values[i]
                    types[name] = outTypes[i]
                }
            } else {
                for (i, name) in outputs.enumerated() where !name.isEmpty && i < outTypes.count { types[name] = outTypes[i] }
                steps.append(Step(node: node, op: op, context: ctx, outputTypes: outTypes))
            }
        }
        for v in graph.outputs where types[v.name] == nil {
            throw .invalidModel("graph output '\(v.name)' is not produced by any node")
        }
        return Analysis(types: types, constants: constants, steps: steps)
    }

    func build() throws(EngineError) -> ExecutionPlan {
        let analysis = try analyze()
        let types = analysis.types
        let constants = analysis.constants
        var steps = analysis.steps
        steps = fuseResiduals(steps, types: types)
        steps = fuseChannelScales(steps, types: types)
        steps = fuseInputNormalizations(steps, types: types)
        steps = fusePooling(steps)

        // 2. Liveness: the step after which each buffer (following aliases) is no longer read.
        let graphOutputs = Set(graph.outputs.map(\.name))
        let graphInputs = Set(graph.inputs.map(\.name))
        var root: [String: String] = [:]
        var lastUse: [String: Int] = [:]
        for (i, s) in steps.enumerated() {
            for name in s.node.inputs where !name.isEmpty && constants[name] == nil {
                lastUse[root[name] ?? name] = i
            }
            if aliasingOperators.contains(s.node.opType), let src = s.node.input(0), constants[src] == nil,
                !s.node.outputs[0].isEmpty
            {
                root[s.node.outputs[0]] = root[src] ?? src
            }
        }
        var pinned = graphInputs
        for name in graphOutputs { pinned.insert(root[name] ?? name) }

        // 3. Buffers: best fit among free blocks, else grow the largest free one, else a new block.
        var blockSize: [Int] = []
        var free = Set<Int>()
        var blockOf: [String: Int] = [:]
        func allocate(_ bytes: Int) -> Int {
            let need = (Swift.max(bytes, 1) + 63) / 64 * 64
            if let best = free.filter({ blockSize[$0] >= need }).min(by: { blockSize[$0] < blockSize[$1] }) {
                free.remove(best)
                return best
            }
            if let largest = free.max(by: { blockSize[$0] < blockSize[$1] }) {
                free.remove(largest)
                blockSize[largest] = need
                return largest
            }
            blockSize.append(need)
            return blockSize.count - 1
        }
        var unshared = 0
        for v in graph.inputs {
            blockOf[v.name] = allocate(types[v.name]!.byteCount)
            unshared += types[v.name]!.byteCount
        }
        for (i, s) in steps.enumerated() {
            for (j, name) in s.node.outputs.enumerated() where !name.isEmpty {
                if root[name] != nil { continue }
                blockOf[name] = allocate(s.outputTypes[j].byteCount)
                unshared += s.outputTypes[j].byteCount
                if lastUse[name] == nil && !pinned.contains(name) { lastUse[name] = i }
            }
            for (name, last) in lastUse where last == i && !pinned.contains(name) {
                if let b = blockOf[name] { free.insert(b) }
            }
        }
        var offsets: [Int] = []
        var total = 0
        for size in blockSize { offsets.append(total); total += size }
        let arena = AlignedBuffer(byteCount: total)
        var owned = [arena]
        var pointers: [String: UnsafeMutableRawPointer] = [:]
        for (name, b) in blockOf { pointers[name] = arena.pointer + offsets[b] }
        for (name, r) in root { pointers[name] = pointers[r] }

        // Float constants that every reader reads only while its kernel is built (weights it
        // packs or transforms) get no buffer of their own: the kernel reads the tensor's
        // storage in place, so a plan holds them once fewer and copies nothing.
        var readers: [String: [(step: Int, input: Int)]] = [:]
        for (i, st) in steps.enumerated() {
            for (j, name) in st.node.inputs.enumerated() where !name.isEmpty && constants[name] != nil {
                readers[name, default: []].append((i, j))
            }
        }
        let planningOnly = Set(
            readers.filter { name, uses in
                guard !graphOutputs.contains(name), case .float32? = constants[name]?.storage else { return false }
                return uses.allSatisfy { steps[$0.step].op.inputsReadOnlyWhilePlanning(steps[$0.step].context).contains($0.input) }
            }.keys)
        var constantBytes = 0

        // Constants read at run time: initializers shared through the session, folded values owned here.
        func constantPointer(_ name: String) -> UnsafeMutableRawPointer {
            if let p = pointers[name] { return p }
            let t = constants[name]!
            constantBytes += t.count * t.elementType.byteSize
            let buffer: AlignedBuffer
            if let initial = graph.initializers[name], initial == t {
                buffer = session.constantBuffer(name, t)
            } else {
                buffer = AlignedBuffer(copying: t)
            }
            owned.append(buffer)
            pointers[name] = buffer.pointer
            return buffer.pointer
        }

        // 4. Kernels over the planned memory.
        var workspaceBytes = 0
        for s in steps { workspaceBytes = Swift.max(workspaceBytes, s.op.workspaceBytes(s.context, outputs: s.outputTypes)) }
        let workspace = AlignedBuffer(byteCount: workspaceBytes)
        owned.append(workspace)
        var kernels: [any Kernel] = []
        for s in steps {
            let inPlace = Array(Set(s.node.inputs.filter { planningOnly.contains($0) }))
            let kernel = try withStorage(of: inPlace[...], [:]) { (storage) throws(EngineError) -> any Kernel in
                var ins: [Operand?] = []
                for name in s.node.inputs {
                    if name.isEmpty { ins.append(nil); continue }
                    let p = storage[name] ?? (constants[name] != nil ? constantPointer(name) : pointers[name]!)
                    ins.append(Operand(type: types[name]!, pointer: p, constant: constants[name]))
                }
                // Kernels index optional inputs freely; absent ones read as nil.
                while ins.count < 8 { ins.append(nil) }
                let outs = s.node.outputs.enumerated().map { j, name in
                    Operand(type: s.outputTypes[j], pointer: name.isEmpty ? workspace.pointer : pointers[name]!, constant: nil)
                }
                return try s.op.kernel(s.context, inputs: ins, outputs: outs, workspace: workspace.pointer)
            }
            kernels.append(kernel)
        }

        /// Runs `body` with pointers into the storage of the float constants `names`, valid
        /// only inside it (no copy).
        func withStorage<R>(
            of names: ArraySlice<String>, _ collected: [String: UnsafeMutableRawPointer],
            _ body: ([String: UnsafeMutableRawPointer]) throws(EngineError) -> R
        ) throws(EngineError) -> R {
            guard let name = names.first else { return try body(collected) }
            guard case .float32(let values)? = constants[name]?.storage else { return try body(collected) }
            let result: Result<R, EngineError> = values.withUnsafeBufferPointer { buffer in
                var more = collected
                more[name] = UnsafeMutableRawPointer(mutating: buffer.baseAddress ?? UnsafePointer(workspace.pointer.assumingMemoryBound(to: Float.self)))
                do throws(EngineError) {
                    return .success(try withStorage(of: names.dropFirst(), more, body))
                } catch {
                    return .failure(error)
                }
            }
            return try result.get()
        }
        for v in graph.outputs where pointers[v.name] == nil { _ = constantPointer(v.name) }
        return ExecutionPlan(
            inputTypes: graph.inputs.map { ($0.name, types[$0.name]!) },
            outputTypes: graph.outputs.map { ($0.name, types[$0.name]!) },
            steps: kernels, stepNames: steps.map { "\($0.node.opType) \($0.node.name)" }, pointers: pointers,
            owned: owned, arenaBytes: total, unsharedBytes: unshared, constantBytes: constantBytes, compute: session.compute)
    }

    /// Conv → MaxPool (→ BatchNormalization) (→ Conv) becomes one `ConvPoolOperator` step when
    /// the convolutions take the direct row path and each value is read only by the next node.
    /// The fused step runs where the Conv ran; its node reads the Conv's inputs and writes
    /// the last fused node's output.
    func fusePooling(_ steps: [Step]) -> [Step] {
        let graphOutputs = Set(graph.outputs.map(\.name))
        var readers: [String: [Int]] = [:]
        for (i, s) in steps.enumerated() { for name in Set(s.node.inputs) where !name.isEmpty { readers[name, default: []].append(i) } }
        /// The one step that reads `value`, if exactly one does and it is not a graph output.
        func soleReader(_ value: String) -> Int? {
            guard !graphOutputs.contains(value), let r = readers[value], r.count == 1 else { return nil }
            return r[0]
        }
        var result = steps
        var dropped = Set<Int>()
        for (ci, conv) in steps.enumerated() where conv.node.opType == "Conv" && conv.node.outputs.count == 1 {
            guard let pi = soleReader(conv.node.outputs[0]), steps[pi].node.inputs.first == conv.node.outputs[0],
                ConvPoolOperator.canFuse(conv: conv.context, pool: steps[pi].context)
            else { continue }
            var fused = [steps[pi]]
            dropped.insert(pi)
            if let bi = soleReader(steps[pi].node.outputs[0]), steps[bi].node.inputs.first == steps[pi].node.outputs[0],
                ConvPoolOperator.canFuse(normalization: steps[bi].context)
            {
                fused.append(steps[bi])
                dropped.insert(bi)
            }
            let pooled = fused.last!.node.outputs[0]
            if let ti = soleReader(pooled), steps[ti].node.inputs.first == pooled, ConvPoolOperator.canFuse(trailing: steps[ti].context) {
                fused.append(steps[ti])
                dropped.insert(ti)
            }
            var step = conv
            step.op = ConvPoolOperator.self
            step.node.opType = ([conv] + fused).map(\.node.opType).joined(separator: "+")
            step.node.name = ([conv] + fused).map(\.node.name).joined(separator: "+")
            step.node.outputs = fused.last!.node.outputs
            step.outputTypes = fused.last!.outputTypes
            step.context.fused = fused.map(\.context)
            result[ci] = step
        }
        return result.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    /// Squeeze-and-excitation's Mul(x, s), s of shape [N, C, 1, 1], read only by a pointwise
    /// Conv on the packed path (GEMM `.packed`, or `.mixed`, which packs that Conv for it), becomes that Conv's input scale (input 4): the Conv reads x and
    /// multiplies each row by its factor while packing it, so x · s is never written. The Conv
    /// runs where it ran; the Mul's step goes.
    func fuseChannelScales(_ steps: [Step], types: [String: ValueType]) -> [Step] {
        let graphOutputs = Set(graph.outputs.map(\.name))
        var readers: [String: [Int]] = [:]
        for (i, s) in steps.enumerated() { for name in Set(s.node.inputs) where !name.isEmpty { readers[name, default: []].append(i) } }
        var result = steps
        var dropped = Set<Int>()
        for (mi, mul) in steps.enumerated() where mul.node.opType == "Mul" && mul.node.inputs.count == 2 && mul.node.outputs.count == 1 {
            let product = mul.node.outputs[0]
            guard mul.node.attributes["_act"] == nil, !graphOutputs.contains(product), let r = readers[product], r.count == 1,
                mul.node.inputs[0] != mul.node.inputs[1]
            else { continue }
            let ci = r[0]
            var conv = steps[ci]
            guard conv.node.opType == "Conv", conv.node.inputs.first == product, conv.node.inputs.count <= 4,
                let shape = try? ConvOperator.shape(conv.context), ConvOperator.acceptsInputPass(shape, conv.context, normalization: false)
            else { continue }
            for side in 0..<2 {
                let x = mul.node.inputs[side], scale = mul.node.inputs[1 - side]
                guard let xt = types[x], let st = types[scale], xt == mul.outputTypes[0], xt.shape.count == 4,
                    st == ValueType(.float32, [xt.shape[0], xt.shape[1], 1, 1]), conv.context.constants.first.flatMap({ $0 }) == nil
                else { continue }
                while conv.node.inputs.count < 4 { conv.node.inputs.append("") }
                conv.node.inputs[0] = x
                conv.node.inputs.append(scale)
                conv.refreshContext(types: types)
                result[ci] = conv
                dropped.insert(mi)
                break
            }
        }
        return result.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    /// BatchNormalization (constant statistics, optionally with ReLU) whose output only a
    /// pointwise Conv on packed weights reads (GEMM `.packed`) (DenseNet's norm1 → relu1 → conv1, its transitions)
    /// becomes part of that Conv: the Conv reads the normalization's input and applies
    /// x·a + b (and ReLU) per channel as it packs B (`_in_scale`, `_in_shift`, `_in_relu`), so
    /// the normalized tensor is never written out. The Conv must have no other input scale.
    func fuseInputNormalizations(_ steps: [Step], types: [String: ValueType]) -> [Step] {
        let graphOutputs = Set(graph.outputs.map(\.name))
        var readers: [String: [Int]] = [:]
        for (i, s) in steps.enumerated() { for name in Set(s.node.inputs) where !name.isEmpty { readers[name, default: []].append(i) } }
        var result = steps
        var dropped = Set<Int>()
        for (bi, bn) in steps.enumerated() where bn.node.opType == "BatchNormalization" && bn.node.outputs.count == 1 {
            let y = bn.node.outputs[0]
            let activation = Activation.fused(in: bn.node)
            guard activation == .none || activation == .relu, !graphOutputs.contains(y), let r = readers[y], r.count == 1,
                let x = bn.node.input(0), bn.outputTypes.first?.shape.count == 4,
                let gamma = bn.context.constant(1)?.floats, let beta = bn.context.constant(2)?.floats,
                let mean = bn.context.constant(3)?.floats, let variance = bn.context.constant(4)?.floats,
                let epsilon = try? bn.context.float("epsilon", default: 1e-5)
            else { continue }
            let ci = r[0]
            var conv = result[ci]
            guard conv.node.opType == "Conv", conv.node.inputs.first == y, conv.node.inputs.count <= 4,
                !conv.node.inputs.dropFirst().contains(y), conv.node.attributes["_in_scale"] == nil,
                let shape = try? ConvOperator.shape(conv.context), ConvOperator.acceptsInputPass(shape, conv.context, normalization: true)
            else { continue }
            // The same arithmetic as BatchNormKernel, so that results do not change.
            var a = [Float](), b = [Float]()
            for c in gamma.indices {
                let ac = gamma[c] / (variance[c] + epsilon).squareRoot()
                a.append(ac)
                b.append(beta[c] - mean[c] * ac)
            }
            conv.node.inputs[0] = x
            conv.node.attributes["_in_scale"] = .floats(a)
            conv.node.attributes["_in_shift"] = .floats(b)
            conv.node.attributes["_in_relu"] = .int(activation == .relu ? 1 : 0)
            conv.refreshContext(types: types)
            result[ci] = conv
            dropped.insert(bi)
        }
        return result.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }

    /// Runs one node on constant inputs at plan time.
    func evaluate(_ op: any Operator.Type, _ ctx: NodeContext, _ outTypes: [ValueType]) throws(EngineError) -> [Tensor] {
        var keep: [AlignedBuffer] = []
        var ins: [Operand?] = []
        for (i, t) in ctx.inputs.enumerated() {
            guard let t else { ins.append(nil); continue }
            let b = ctx.constants[i].map { AlignedBuffer(copying: $0) } ?? AlignedBuffer(byteCount: t.byteCount)
            keep.append(b)
            ins.append(Operand(type: t, pointer: b.pointer, constant: ctx.constants[i]))
        }
        while ins.count < 8 { ins.append(nil) }
        let outs = outTypes.map { t -> Operand in
            let b = AlignedBuffer(byteCount: t.byteCount)
            keep.append(b)
            return Operand(type: t, pointer: b.pointer, constant: nil)
        }
        let workspace = AlignedBuffer(byteCount: op.workspaceBytes(ctx, outputs: outTypes))
        try op.kernel(ctx, inputs: ins, outputs: outs, workspace: workspace.pointer).execute(session.compute.parallel)
        return withExtendedLifetime(keep) { outs.map { readTensor($0.type, from: $0.pointer) } }
    }

    /// Conv → Add(residual of the same shape) becomes one Conv whose epilogue adds the residual
    /// (and applies the Add's fused activation). The fused step runs where the Add ran, after
    /// both operands exist.
    func fuseResiduals(_ steps: [Step], types: [String: ValueType]) -> [Step] {
        let graphOutputs = Set(graph.outputs.map(\.name))
        var readers: [String: Int] = [:]
        for s in steps { for name in s.node.inputs where !name.isEmpty { readers[name, default: 0] += 1 } }
        var producer: [String: Int] = [:]
        for (i, s) in steps.enumerated() { for name in s.node.outputs { producer[name] = i } }
        var result = steps
        var dropped = Set<Int>()
        for (ai, add) in steps.enumerated() where add.node.opType == "Add" && add.outputTypes[0].elementType == .float32 {
            for side in 0..<2 {
                let convOut = add.node.inputs[side]
                let other = add.node.inputs[1 - side]
                guard let ci = producer[convOut], !dropped.contains(ci), steps[ci].node.opType == "Conv",
                    steps[ci].node.attributes["_act"] == nil, steps[ci].node.inputs.count <= 3,
                    readers[convOut] == 1, !graphOutputs.contains(convOut), producer[other] != nil || graph.inputs.contains(where: { $0.name == other }),
                    types[other] == steps[ci].outputTypes[0], types[other] == add.outputTypes[0]
                else { continue }
                var conv = steps[ci]
                while conv.node.inputs.count < 3 { conv.node.inputs.append("") }
                conv.node.inputs.append(other)
                conv.node.outputs = add.node.outputs
                for (k, v) in add.node.attributes where k.hasPrefix("_") { conv.node.attributes[k] = v }
                conv.refreshContext(types: types)
                result[ai] = conv
                dropped.insert(ci)
                break
            }
        }
        return result.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
    }
}
