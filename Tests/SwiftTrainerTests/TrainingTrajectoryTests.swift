import Foundation
import Testing
@testable import SwiftTrainer
import TallyTensor

/// Five AdamW steps with gradient clipping against PyTorch (full fine-tune of tiny-llama)
/// and PEFT (LoRA from tiny-llama-lora-train/initial): the loss before each step, the
/// gradient norm before clipping, and the weights after the last step.
@Suite struct TrainingTrajectoryTests {
    struct Trajectory {
        let losses: [Double]
        let gradNorms: [Double]
        let finalLoss: Double
    }

    func batch() throws -> (TokenBatch, [Int]) {
        let forward = try SafeTensorsFile(contentsOf: Fixtures.directory("tiny-llama").appendingPathComponent("forward.safetensors"))
        let ids = try forward.integers("input_ids")
        let labels = try forward.integers("labels").values.map { Int($0) }
        return (TokenBatch(ids: ids.values.map { Int($0) }, batch: ids.shape[0], length: ids.shape[1]), labels)
    }

    /// Runs `steps` optimiser steps through ``TrainingStep`` (the trainer's own update).
    func run(model: any CausalLanguageModel, parameters: [(name: String, tensor: Tensor)], lr: Double, steps: Int) throws -> Trajectory {
        let (b, labels) = try batch()
        let optimizer = AdamWOptimizer(parameters: parameters, weightDecay: 0.01, betas: (0.9, 0.999), eps: 1e-8)
        var losses: [Double] = [], norms: [Double] = []
        let tensors = parameters.map(\.tensor)
        for _ in 0..<steps {
            for t in tensors { t.zeroGrad() }
            let tape = Tape()
            let loss = model.loss(b, labels: labels, tape: tape)
            losses.append(Double(loss.scalar))
            tape.backward(from: loss)
            norms.append(TrainingStep.apply(optimizer: optimizer, learningRate: lr, maxGradNorm: 1.0))
        }
        let final = model.loss(b, labels: labels, tape: Tape(recording: false))
        return Trajectory(losses: losses, gradNorms: norms, finalLoss: Double(final.scalar))
    }

    func check(_ got: Trajectory, against ref: [String: Any]) throws {
        let losses = try #require(ref["loss_before_each_step"] as? [Double])
        let norms = try #require(ref["grad_norm_before_clip"] as? [Double])
        let last = try #require(ref["loss_after_last_step"] as? Double)
        #expect(got.losses.count == losses.count)
        for (g, w) in zip(got.losses, losses) { #expect(abs(g - w) < 1e-3, "loss \(g) vs \(w)") }
        for (g, w) in zip(got.gradNorms, norms) { #expect(abs(g - w) < 1e-3, "grad norm \(g) vs \(w)") }
        #expect(abs(got.finalLoss - last) < 1e-3, "final loss \(got.finalLoss) vs \(last)")
    }

    @Test func fullFineTuneFollowsPyTorch() throws {
        let dir = try Fixtures.directory("tiny-llama")
        let model = try ModelLoader.load(huggingFaceDirectory: dir)
        let ref = try #require(Fixtures.expected("tiny-llama")["full_finetune"] as? [String: Any])
        let got = try run(model: model, parameters: model.namedParameters, lr: 1e-3, steps: 5)
        try check(got, against: ref)
        let after = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("after_full_finetune.safetensors"))
        let names = Set(model.namedParameters.map(\.name))
        #expect(names.isSubset(of: Set(after.names)))
        for (name, tensor) in model.namedParameters {
            let diff = Fixtures.maxDifference(tensor.values, try after.tensor(name).values)
            #expect(diff < 1e-3, "\(name): max difference \(diff)")
        }
    }

    @Test func loRATrainingFollowsPEFT() throws {
        let model = try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"))
        let train = try Fixtures.directory("tiny-llama-lora-train")
        let lora = try PEFTAdapter.load(from: train.appendingPathComponent("initial"), into: model)
        let ref = try #require(Fixtures.expected("tiny-llama-lora")["lora_training"] as? [String: Any])
        let got = try run(model: model, parameters: lora.namedParameters, lr: 1e-2, steps: 5)
        try check(got, against: ref)
        let final = try SafeTensorsFile(contentsOf: train.appendingPathComponent("final").appendingPathComponent("adapter_model.safetensors"))
        let ours = PEFTAdapter.stateDict(lora)
        #expect(Set(ours.keys) == Set(final.names))
        for (key, w) in ours {
            let diff = Fixtures.maxDifference(w.values, try final.tensor(key).values)
            #expect(diff < 1e-3, "\(key): max difference \(diff)")
        }
        // The base never moved.
        let base = try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"))
        for ((n, t), (_, b)) in zip(model.namedParameters, base.namedParameters) {
            #expect(t.values == b.values, "\(n) changed under LoRA")
        }
    }
}

/// Learning-rate schedules, clipping and AdamW's update against hand-computed values.
@Suite struct TrainingMathTests {
    @Test func schedulesMatchHuggingFace() throws {
        let c = LearningRateSchedule(kind: .constant, peak: 1e-3, warmupSteps: 2, totalSteps: 10)
        #expect(c.learningRate(at: 0) == 0)
        #expect(abs(c.learningRate(at: 1) - 5e-4) < 1e-15)
        #expect(c.learningRate(at: 2) == 1e-3)
        #expect(c.learningRate(at: 9) == 1e-3)
        let l = LearningRateSchedule(kind: .linear, peak: 1e-3, warmupSteps: 2, totalSteps: 10)
        #expect(abs(l.learningRate(at: 1) - 5e-4) < 1e-15)
        #expect(abs(l.learningRate(at: 2) - 1e-3) < 1e-15)
        #expect(abs(l.learningRate(at: 6) - 5e-4) < 1e-15)  // (10-6)/(10-2)
        #expect(abs(l.learningRate(at: 9) - 1.25e-4) < 1e-15)
        #expect(l.learningRate(at: 10) == 0)
        let cos = LearningRateSchedule(kind: .cosine, peak: 2e-3, warmupSteps: 0, totalSteps: 4)
        #expect(abs(cos.learningRate(at: 0) - 2e-3) < 1e-15)
        #expect(abs(cos.learningRate(at: 1) - 2e-3 * 0.5 * (1 + 0.5.squareRoot())) < 1e-12)  // cos(pi/4)
        #expect(abs(cos.learningRate(at: 2) - 1e-3) < 1e-12)
        #expect(abs(cos.learningRate(at: 4)) < 1e-15)
        #expect(throws: (any Error).self) { _ = try LearningRateSchedule(name: "exponential", peak: 1, warmupSteps: 0, totalSteps: 1) }
    }

    @Test func clippingScalesToTheMaximumNorm() throws {
        let a = try Tensor(shape: [2], values: [0, 0], requiresGrad: true)
        let b = try Tensor(shape: [1], values: [0], requiresGrad: true)
        a.ensureGrad()[0] = 3; a.ensureGrad()[1] = 0; b.ensureGrad()[0] = 4  // norm 5
        let norm = GradientNorm.clip([a, b], maxNorm: 1)
        #expect(abs(norm - 5) < 1e-12)
        let coef = Float(1 / (5 + 1e-6))
        #expect(abs((a.gradValues?[0] ?? 0) - 3 * coef) < 1e-7)
        #expect(abs((b.gradValues?[0] ?? 0) - 4 * coef) < 1e-7)
        // Below the threshold nothing changes.
        let small = GradientNorm.clip([a, b], maxNorm: 10)
        #expect(abs(small - 1) < 1e-5)
        #expect(abs((b.gradValues?[0] ?? 0) - 4 * coef) < 1e-7)
    }

    @Test func adamWStepMatchesHandComputation() throws {
        // One parameter p = 1, gradient 0.5, lr 0.1, wd 0.1: PyTorch gives
        // p = 1 * (1 - 0.01) - 0.1 * 1 (bias-corrected m/sqrt(v) = sign(g)), within eps.
        let p = try Tensor(shape: [1], values: [1], requiresGrad: true)
        p.ensureGrad()[0] = 0.5
        let opt = AdamWOptimizer(parameters: [("p", p)], weightDecay: 0.1)
        opt.step(lr: 0.1)
        #expect(abs(p.scalar - (0.99 - 0.1 * 0.5 / (0.5 + 1e-8))) < 1e-6)
        // Second step with gradient -0.25.
        p.ensureGrad()[0] = -0.25
        let before = p.scalar
        opt.step(lr: 0.1)
        let m = 0.9 * 0.05 + 0.1 * -0.25, v = 0.999 * 0.00025 + 0.001 * 0.0625
        let mHat = m / (1 - 0.81), denom = (v.squareRoot() / (1 - 0.999 * 0.999).squareRoot()) + 1e-8
        let want = Double(before) * (1 - 0.01) - 0.1 * mHat / denom
        #expect(abs(Double(p.scalar) - want) < 1e-6)
    }
}
