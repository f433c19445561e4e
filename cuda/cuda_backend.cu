// The CUDA backend: memory, the device copies of weights, and the op table over the kernels of
// kernels.cuh.
#include "cuda_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/gpu_backend.h"
#include "cuda_common.cuh"
#include "kernels.cuh"

namespace chimera {

namespace {
size_t align_up(size_t n) { return (n + 255) / 256 * 256; }
constexpr int kTickets = 1 << 16;
}  // namespace

namespace cuda {
bool& pdl_enabled() {
  static bool on = false;
  return on;
}
}  // namespace cuda

// ---- entry points of gpu_backend.h ----

bool gpu_backend_built() { return true; }

bool gpu_available(int device, std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();
    if (why) *why = std::string("no CUDA device is usable (") + (e != cudaSuccess ? cudaGetErrorString(e) : "none found") + ")";
    return false;
  }
  if (device < 0 || device >= n) {
    if (why) *why = "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(n) + " found)";
    return false;
  }
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (major < 8) {
    if (why)
      *why = "CUDA device " + std::to_string(device) + " has compute capability " + std::to_string(major) + "." +
             std::to_string(minor) + "; the CUDA kernels need 8.0 or newer";
    return false;
  }
  return true;
}

std::unique_ptr<Backend> create_gpu_backend(int device) {
  std::string why;
  if (!gpu_available(device, &why)) throw_error(ErrorCode::Cuda, why);
  return std::make_unique<CudaBackend>(device);
}

// ---- CudaBackend ----

CudaBackend::CudaBackend(int device) : device_(device) {
  CHIMERA_CUDA_CHECK(cudaSetDevice(device));
  // Programmatic dependent launch where every GPU in use has it (compute capability 9.0+).
  static bool first = true;
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  const char* env = std::getenv("CHIMERA_CUDA_PDL");
  const bool pdl = major >= 9 && !(env && std::string(env) == "0");
  cuda::pdl_enabled() = first ? pdl : (cuda::pdl_enabled() && pdl);
  first = false;
  CHIMERA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CHIMERA_CUDA_CHECK(cudaMalloc(&tickets_, kTickets * sizeof(int)));
  CHIMERA_CUDA_CHECK(cudaMemset(tickets_, 0, kTickets * sizeof(int)));
}

CudaBackend::~CudaBackend() {
  use_device();
  cudaStreamSynchronize(stream_);
  for (auto& kv : weights_)
    if (kv.second.owned) cudaFree(kv.second.dev);
  if (scratch_) cudaFree(scratch_);
  for (void* p : retired_) cudaFree(p);
  cudaFree(tickets_);
  cudaStreamDestroy(stream_);
}

void CudaBackend::use_device() const {
  if (device_ != 0) cudaSetDevice(device_);  // a new host thread starts on device 0
}

void CudaBackend::synchronize() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  CHIMERA_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void* CudaBackend::alloc(size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 256));
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw_error(e == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Cuda, "cannot allocate ", bytes,
                " bytes of GPU memory: ", cudaGetErrorString(e));
  }
  return p;
}

void CudaBackend::free(void* p) {
  if (!p) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cudaFree(p);  // implicitly waits for queued work; errors here cannot be acted on
}

void CudaBackend::copy_to_device(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  // From pageable memory this returns once src has been staged, so the caller may reuse it.
  CHIMERA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  CHIMERA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  CHIMERA_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_device(void* dst, const void* src, size_t bytes) {
  if (!bytes || dst == src) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  CHIMERA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void* CudaBackend::scratch(size_t bytes) {
  if (bytes <= scratch_bytes_) return scratch_;
  if (scratch_) retired_.push_back(scratch_);
  scratch_ = nullptr;
  scratch_bytes_ = 0;
  const size_t n = std::max(align_up(bytes), (size_t)1 << 20);
  const cudaError_t e = cudaMalloc(&scratch_, n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    scratch_ = nullptr;
    throw_error(ErrorCode::OutOfMemory, "cannot allocate ", n, " bytes of GPU scratch: ", cudaGetErrorString(e));
  }
  scratch_bytes_ = n;
  return scratch_;
}

TensorView CudaBackend::device_weights(const TensorView& w) {
  const size_t bytes = w.bytes();
  auto it = weights_.find(w.data);
  if (it != weights_.end()) {
    const DeviceCopy& d = it->second;
    const size_t edge = std::min<size_t>(16, bytes);
    const uint8_t* h = static_cast<const uint8_t*>(w.data);
    const bool same = d.host_bytes == bytes &&
                      (!d.owned || (std::memcmp(d.head, h, edge) == 0 && std::memcmp(d.tail, h + bytes - edge, edge) == 0));
    if (same) return TensorView{d.dtype, d.dev, w.rows, w.cols};
    if (d.owned) cudaFree(d.dev);
    weights_.erase(it);
  }
  DeviceCopy d;
  d.host_bytes = bytes;
  cudaPointerAttributes attr;
  const cudaError_t e = cudaPointerGetAttributes(&attr, w.data);
  if (e == cudaSuccess && attr.type == cudaMemoryTypeDevice) {
    d.owned = false;
    d.dev = const_cast<void*>(w.data);
    d.dtype = w.dtype;
  } else {
    cudaGetLastError();
    const uint8_t* h = static_cast<const uint8_t*>(w.data);
    const size_t edge = std::min<size_t>(16, bytes);
    std::memcpy(d.head, h, edge);
    std::memcpy(d.tail, h + bytes - edge, edge);
    if (dtype_is_quantized(w.dtype)) {  // dequantised once to F16
      d.dtype = DType::F16;
      const size_t out_bytes = (size_t)w.rows * w.cols * 2;
      std::vector<uint16_t> f16((size_t)w.rows * w.cols);
      std::vector<float> row((size_t)w.cols);
      for (int64_t r = 0; r < w.rows; r++) {
        row_to_f32(w.dtype, w.row(r), row.data(), (size_t)w.cols);
        for (int64_t c = 0; c < w.cols; c++) f16[(size_t)r * w.cols + c] = f32_to_fp16(row[c]);
      }
      CHIMERA_CUDA_CHECK(cudaMalloc(&d.dev, out_bytes));
      // On our stream, so the kernels queued after it see the whole copy; from pageable memory the
      // call returns once f16 is staged.
      CHIMERA_CUDA_CHECK(cudaMemcpyAsync(d.dev, f16.data(), out_bytes, cudaMemcpyHostToDevice, stream_));
    } else {
      d.dtype = w.dtype;
      const cudaError_t ea = cudaMalloc(&d.dev, std::max<size_t>(bytes, 256));
      if (ea != cudaSuccess) {
        cudaGetLastError();
        throw_error(ErrorCode::OutOfMemory, "cannot allocate ", bytes, " bytes of GPU memory for weights: ",
                    cudaGetErrorString(ea));
      }
      CHIMERA_CUDA_CHECK(cudaMemcpyAsync(d.dev, w.data, bytes, cudaMemcpyHostToDevice, stream_));
    }
  }
  weights_[w.data] = d;
  return TensorView{d.dtype, d.dev, w.rows, w.cols};
}

const float* CudaBackend::device_floats(const float* host, int64_t n) {
  return static_cast<const float*>(device_weights(TensorView{DType::F32, host, 1, n}).data);
}

void CudaBackend::embed(float* out, const TensorView& table, const int32_t* tokens, int T) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  const TensorView d = device_weights(table);
  cuda::embed(stream_, out, d.dtype, d.data, (int)d.cols, tokens, T);
}

void CudaBackend::rmsnorm(float* out, const float* x, const float* w, int T, int C, float eps) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::rmsnorm(stream_, out, x, device_floats(w, C), T, C, eps);
}

void CudaBackend::matmul(float* out, const float* x, const TensorView& W, int T) {
  if (T <= 0 || W.rows <= 0) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  const TensorView d = device_weights(W);
  CHIMERA_CHECK(cuda::matmul_tickets_needed((int)d.rows) <= kTickets, ErrorCode::Unsupported,
                "CUDA matmul: ", d.rows, " rows is too many");
  const size_t need = cuda::matmul_scratch_bytes(d.dtype, (int)d.rows, (int)d.cols, T);
  cuda::matmul(stream_, out, x, d.dtype, d.data, (int)d.rows, (int)d.cols, T,
               need ? static_cast<float*>(scratch(need)) : nullptr, tickets_);
}

void CudaBackend::matmul_group(float* const* outs, const TensorView* const* Ws, int count, const float* x, int T) {
  if (T <= 0) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  TensorView d[3];
  bool together = count >= 1 && count <= 3;
  int groups = 0;
  for (int i = 0; i < count && together; i++) {
    d[i] = device_weights(*Ws[i]);
    together = cuda::matmul_uses_tensor_cores(d[i].dtype, (int)d[i].rows, (int)d[i].cols) &&
               d[i].dtype == d[0].dtype && d[i].cols == d[0].cols;
    groups += cuda::matmul_tickets_needed((int)d[i].rows);
  }
  if (!together || groups > kTickets) {
    for (int i = 0; i < count; i++) matmul(outs[i], x, *Ws[i], T);
    return;
  }
  int N[3];
  const void* W[3];
  for (int i = 0; i < count; i++) {
    N[i] = (int)d[i].rows;
    W[i] = d[i].data;
  }
  const int K = (int)d[0].cols;
  const size_t need = cuda::matmul_group_scratch_bytes(N, count, K, T);
  cuda::matmul_group(stream_, outs, W, N, count, d[0].dtype, x, K, T, false,
                     need ? static_cast<float*>(scratch(need)) : nullptr, tickets_);
}

void CudaBackend::matmul_add(float* out, const float* x, const TensorView& W, int T, float* scratch_rows) {
  if (T <= 0 || W.rows <= 0) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  const TensorView d = device_weights(W);
  const int N = (int)d.rows, K = (int)d.cols;
  if (!cuda::matmul_uses_tensor_cores(d.dtype, N, K) || cuda::matmul_tickets_needed(N) > kTickets)
    return Backend::matmul_add(out, x, W, T, scratch_rows);
  const size_t need = cuda::matmul_group_scratch_bytes(&N, 1, K, T);
  float* outs[1] = {out};
  const void* Wd[1] = {d.data};
  cuda::matmul_group(stream_, outs, Wd, &N, 1, d.dtype, x, K, T, /*accumulate=*/true,
                     need ? static_cast<float*>(scratch(need)) : nullptr, tickets_);
}

void CudaBackend::rope(float* x, const int32_t* pos, int T, int n_heads, int HS, int rope_dims, float theta,
                       RopeLayout layout, const float* freq_factors) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  const float* ff = freq_factors ? device_floats(freq_factors, std::max(1, rope_dims / 2)) : nullptr;
  cuda::rope(stream_, x, pos, T, n_heads, HS, rope_dims, theta, layout == RopeLayout::Interleaved, ff);
}

void CudaBackend::add_bias(float* x, const float* bias, int T, int N) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::add_bias(stream_, x, device_floats(bias, N), T, N);
}

void CudaBackend::attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                            const uint8_t* mask, int T, int n_past, int NH, int NKV, int HS,
                            const DeviceSlots* slots) {
  if (T <= 0) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  const int max_slots = slots ? std::max(slots->max_slots, n_past + T) : n_past + T;
  void* s = scratch(cuda::attention_scratch_bytes(T, max_slots, NH, HS, mask != nullptr));
  cuda::attention(stream_, out, q, k_cache, v_cache, mask, T, n_past, slots ? slots->n_past : nullptr, max_slots, NH,
                  NKV, HS, s);
}

void CudaBackend::store_rows(float* base, const float* src, int T, int row_floats, int at, const DeviceSlots* slots) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::store_rows(stream_, base, src, T, row_floats, at, slots ? slots->n_past : nullptr);
}

namespace {

class CudaGraph final : public OpGraph {
 public:
  CudaGraph(std::recursive_mutex& m, cudaStream_t s, cudaGraph_t g, cudaGraphExec_t e)
      : mutex_(m), stream_(s), graph_(g), exec_(e) {}
  ~CudaGraph() override {
    cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
  }
  void replay() override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    CHIMERA_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
  }

 private:
  std::recursive_mutex& mutex_;
  cudaStream_t stream_;
  cudaGraph_t graph_;
  cudaGraphExec_t exec_;
};

}  // namespace

std::unique_ptr<OpGraph> CudaBackend::record(const std::function<void()>& ops) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);  // held throughout: no other thread's op is captured
  use_device();
  CHIMERA_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  cudaGraph_t graph = nullptr;
  try {
    ops();
  } catch (...) {
    cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    return nullptr;  // the caller runs the ops directly (and meets the error again if it is real)
  }
  const cudaError_t e = cudaStreamEndCapture(stream_, &graph);
  if (e != cudaSuccess || !graph) {
    cudaGetLastError();
    if (graph) cudaGraphDestroy(graph);
    return nullptr;
  }
  cudaGraphExec_t exec = nullptr;
  if (cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
    cudaGetLastError();
    cudaGraphDestroy(graph);
    return nullptr;
  }
  return std::make_unique<CudaGraph>(mutex_, stream_, graph, exec);
}

void CudaBackend::swiglu(float* out, const float* gate, const float* up, int64_t n) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::swiglu(stream_, out, gate, up, n);
}

void CudaBackend::add(float* x, const float* y, int64_t n) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::add(stream_, x, y, n);
}

void CudaBackend::bias_silu_residual(float* out, const float* x, const float* r, const float* bias, int64_t n) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::bias_silu_residual(stream_, out, x, r, device_floats(bias, n), n);
}

void CudaBackend::gather_rows(float* dst, const float* src, const int32_t* rows, int R, int C) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::gather_rows(stream_, dst, src, rows, R, C);
}

void CudaBackend::compact_rows(float* base, int64_t block_stride, int blocks, int row_floats, const int32_t* src,
                               int dst_start, int count) {
  if (count <= 0 || blocks <= 0) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  const size_t ints = align_up((size_t)count * sizeof(int32_t));
  uint8_t* s = static_cast<uint8_t*>(scratch(ints + cuda::compact_rows_scratch_bytes(blocks, row_floats, count)));
  CHIMERA_CUDA_CHECK(cudaMemcpyAsync(s, src, (size_t)count * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  cuda::compact_rows(stream_, base, block_stride, blocks, row_floats, reinterpret_cast<const int32_t*>(s), dst_start,
                     count, reinterpret_cast<float*>(s + ints));
}

void CudaBackend::argmax_rows(int32_t* out, const float* x, int R, int V) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::argmax_rows(stream_, out, x, R, V);
}

void CudaBackend::top_k_rows(int32_t* ids, float* vals, const float* x, int R, int V, int k, float penalty,
                             const int32_t* recent, int n_recent) {
  CHIMERA_CHECK(k >= 1 && k <= V && n_recent >= 0, ErrorCode::InvalidArg, "top_k_rows: k = ", k, " of ", V,
                ", ", n_recent, " recent ids");
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  use_device();
  cuda::top_k_rows(stream_, ids, vals, x, R, V, k, penalty, recent, n_recent);
}

}  // namespace chimera
