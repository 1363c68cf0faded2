// swift-tools-version:6.0
import PackageDescription
import Foundation

/// The numeric kernels use `SIMD16<Float>`; without a CPU flag swiftc targets baseline x86-64 and those loops run
/// ~200x slower (see TOOLCHAIN.md). The root package therefore builds for the host CPU. Set `CONVLAB_PORTABLE=1`
/// to build without unsafe flags (a plain x86-64 binary, or when convlab is consumed as a dependency).
let portable = ProcessInfo.processInfo.environment["CONVLAB_PORTABLE"] == "1"
let hostCPU: [SwiftSetting] = portable ? [] : [.unsafeFlags(["-target-cpu", "native"])]
/// `-Ounchecked` only where the hot kernels are (the GEMM engines and the backends): measured on the Intel machine,
/// 2 threads, the 23-row suite 3 rounds each way (`scripts/ab-bench.sh`), building those targets with plain `-O`
/// made the best backend per row 1.135× slower in geometric mean (FFT rows 1.3–2.0×: the overflow checks in the
/// per-bin product and tile loops), well past the 3% that would justify the checks. Every size those loops use is
/// computed once, overflow-checked, in the plan's geometry (`CheckedArithmetic`, `WorkspaceLayout`), and the
/// AddressSanitizer pass of `.ci/run` runs these very builds. The other targets keep Swift's checks.
let kernels: [SwiftSetting] = hostCPU + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

/// The layering, lowest first. Each arrow is a target dependency, so a module cannot use one above it: the compiler
/// holds the architecture, not a convention.
///
///     ConvLabCore          descriptor, tensors, errors, limits, parallel-for, workspace layout, clock
///       ← ConvLabMatMul    the matrix-multiply abstraction: native AVX-512 SGEMM, OpenBLAS, Strassen
///       ← ConvLabBackends  the Convolution protocol, the registry, reference / im2col / direct / FFT / Winograd
///       ← ConvLabAccuracy  checker against the float64 reference, accuracy study
///       ← ConvLabBenchmark timing policy, comparison runner, sweeps, .npy / CSV / suite files
///       ← ConvLabSelection cost model, selector, wisdom, autotuner
///       ← ConvLabStudies   layer designs, low-rank decompositions (LAPACK's SVD from OpenBLAS)
///       ← ConvLabNetworks  whole networks: architecture tables, trained-model graphs, end-to-end inference
///       ← ConvLab          umbrella: re-exports all of the above (`import ConvLab`)
///       ← convlab          the command line (the only user of ArgumentParser)
let package = Package(
    name: "convlab",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ConvLab", targets: ["ConvLab"]),
        .executable(name: "convlab", targets: ["convlab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "ConvLabCore", swiftSettings: hostCPU),
        .target(name: "ConvLabMatMul", dependencies: ["ConvLabCore", "CBLAS", "CCacheHints"], swiftSettings: kernels),
        .target(name: "ConvLabBackends", dependencies: ["ConvLabCore", "ConvLabMatMul", "CFFTW", "CCacheHints"],
                swiftSettings: kernels),
        .target(name: "ConvLabAccuracy", dependencies: ["ConvLabCore", "ConvLabBackends"], swiftSettings: hostCPU),
        .target(name: "ConvLabBenchmark",
                dependencies: ["ConvLabCore", "ConvLabMatMul", "ConvLabBackends", "ConvLabAccuracy"],
                swiftSettings: hostCPU),
        .target(name: "ConvLabSelection",
                dependencies: ["ConvLabCore", "ConvLabMatMul", "ConvLabBackends", "ConvLabBenchmark"],
                swiftSettings: hostCPU),
        .target(name: "ConvLabStudies",
                dependencies: ["ConvLabCore", "ConvLabBackends", "ConvLabBenchmark", "ConvLabSelection", "CBLAS"],
                swiftSettings: hostCPU),
        .target(name: "ConvLabNetworks",
                dependencies: ["ConvLabCore", "ConvLabBackends", "ConvLabAccuracy", "ConvLabBenchmark",
                               "ConvLabSelection"],
                swiftSettings: hostCPU),
        .target(name: "ConvLab",
                dependencies: ["ConvLabCore", "ConvLabMatMul", "ConvLabBackends", "ConvLabAccuracy",
                               "ConvLabBenchmark", "ConvLabSelection", "ConvLabStudies", "ConvLabNetworks"],
                swiftSettings: hostCPU),
        .executableTarget(
            name: "convlab",
            dependencies: ["ConvLab", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: hostCPU
        ),
        .testTarget(name: "ConvLabTests", dependencies: ["ConvLab"], swiftSettings: hostCPU),

        // MARK: - Implementation details: system libraries
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        // A header of compiler builtins (software prefetch), no library.
        .systemLibrary(name: "CCacheHints"),
    ]
)
