// oneDNN's LSTM primitive as XLA FFI custom calls (CPU only; see onednn.py).
//
// Layouts (row-major, float32), which are seqjax's own, so no copies are made
// on the Python side:
//   x (T, B, D)  h0, c0 (B, H)  w_x (D, 4H)  w_h (H, 4H)  b (4H)  y (T, B, H)
// with gates in the order i, f, g, o. (D, 4H) read as (1, 1, D, 4, H) is
// oneDNN's `ldigo` weights layout, and (T, B, D) is its `tnc` layout.
//
// Primitives are built once per shape and cached; weights are reordered into
// the layout each primitive prefers on every call (one pass over W, as
// PyTorch's mkldnn LSTM does). oneDNN's backward pass *accumulates* into the
// weight and bias gradients, so those outputs are zeroed first.

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

struct Shape {
  int64_t T, B, D, H;
  memory::desc src_layer() const { return {{T, B, D}, dt::f32, tag::tnc}; }
  memory::desc state() const { return {{1, 1, B, H}, dt::f32, tag::ldnc}; }
  memory::desc w_layer(tag t = tag::ldigo) const { return {{1, 1, D, 4, H}, dt::f32, t}; }
  memory::desc w_iter(tag t = tag::ldigo) const { return {{1, 1, H, 4, H}, dt::f32, t}; }
  memory::desc bias() const { return {{1, 1, 4, H}, dt::f32, tag::ldgo}; }
  memory::desc dst_layer() const { return {{T, B, H}, dt::f32, tag::tnc}; }
  bool operator<(const Shape& o) const {
    return std::tie(T, B, D, H) < std::tie(o.T, o.B, o.D, o.H);
  }
};

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::lstm_forward::primitive_desc ForwardDesc(const Shape& s, bool training) {
  return dnnl::lstm_forward::primitive_desc(
      Engine(), training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
      dnnl::rnn_direction::unidirectional_left2right, s.src_layer(), s.state(), s.state(),
      s.w_layer(tag::any), s.w_iter(tag::any), s.bias(), s.dst_layer(), s.state(), s.state(),
      UserScratchpad());
}

struct Forward {
  dnnl::lstm_forward::primitive_desc pd;
  dnnl::lstm_forward prim;
  dnnl::reorder w_layer_reorder, w_iter_reorder;
  explicit Forward(const Shape& s, bool training)
      : pd(ForwardDesc(s, training)),
        prim(pd),
        w_layer_reorder(dnnl::reorder::primitive_desc(Engine(), s.w_layer(), Engine(),
                                                      pd.weights_layer_desc())),
        w_iter_reorder(dnnl::reorder::primitive_desc(Engine(), s.w_iter(), Engine(),
                                                     pd.weights_iter_desc())) {}
};

struct Backward {
  dnnl::lstm_forward::primitive_desc fwd_pd;
  dnnl::lstm_backward::primitive_desc pd;
  dnnl::lstm_backward prim;
  dnnl::reorder w_layer_reorder, w_iter_reorder;
  explicit Backward(const Shape& s)
      : fwd_pd(ForwardDesc(s, true)),
        pd(Engine(), dnnl::prop_kind::backward, dnnl::rnn_direction::unidirectional_left2right,
           s.src_layer(), s.state(), s.state(), s.w_layer(tag::any), s.w_iter(tag::any), s.bias(),
           s.dst_layer(), s.state(), s.state(), s.src_layer(), s.state(), s.state(),
           s.w_layer(), s.w_iter(), s.bias(), s.dst_layer(), s.state(), s.state(), fwd_pd,
           UserScratchpad()),
        prim(pd),
        w_layer_reorder(dnnl::reorder::primitive_desc(Engine(), s.w_layer(), Engine(),
                                                      pd.weights_layer_desc())),
        w_iter_reorder(dnnl::reorder::primitive_desc(Engine(), s.w_iter(), Engine(),
                                                     pd.weights_iter_desc())) {}
};

template <typename P>
P& Cached(const Shape& s, bool flag) {
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<Shape, bool>, std::unique_ptr<P>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*cache)[{s, flag}];
  if (!slot) {
    if constexpr (std::is_same_v<P, Forward>) {
      slot = std::make_unique<P>(s, flag);
    } else {
      slot = std::make_unique<P>(s);
    }
  }
  return *slot;
}

// oneDNN's scratchpad (tens of MB for long sequences). A fresh zeroed vector
// per call costs more than the LSTM itself (page faults), so each thread keeps
// one buffer and grows it when needed; it is never read before written.
void* Scratch(size_t bytes) {
  thread_local std::unique_ptr<char[]> buffer;
  thread_local size_t capacity = 0;
  if (bytes > capacity) {
    buffer.reset(new char[bytes]);
    capacity = bytes;
  }
  return buffer.get();
}

memory Mem(const memory::desc& d, const void* data) {
  return memory(d, Engine(), const_cast<void*>(data));
}

// Buffer for a reordered weight (or nothing when the layouts already agree).
struct Reordered {
  std::vector<char> storage;
  memory mem;
  Reordered(memory user, const memory::desc& want, dnnl::reorder& r, dnnl::stream& strm) {
    if (user.get_desc() == want) {
      mem = user;
      return;
    }
    storage.resize(want.get_size());
    mem = memory(want, Engine(), storage.data());
    r.execute(strm, user, mem);
  }
};

Shape ShapeOf(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w_h) {
  auto xd = x.dimensions();
  auto wd = w_h.dimensions();
  return Shape{xd[0], xd[1], xd[2], wd[0]};
}

ffi::Error ForwardImpl(bool training, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> h0,
                       ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> w_x,
                       ffi::Buffer<ffi::F32> w_h, ffi::Buffer<ffi::F32> b,
                       ffi::ResultBuffer<ffi::F32> y, ffi::ResultBuffer<ffi::F32> h_t,
                       ffi::ResultBuffer<ffi::F32> c_t, void* workspace) {
  try {
    const Shape s = ShapeOf(x, w_h);
    Forward& f = Cached<Forward>(s, training);
    dnnl::stream strm(Engine());
    Reordered wl(Mem(s.w_layer(), w_x.typed_data()), f.pd.weights_layer_desc(),
                 f.w_layer_reorder, strm);
    Reordered wi(Mem(s.w_iter(), w_h.typed_data()), f.pd.weights_iter_desc(),
                 f.w_iter_reorder, strm);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC_LAYER, Mem(s.src_layer(), x.typed_data())},
        {DNNL_ARG_SRC_ITER, Mem(s.state(), h0.typed_data())},
        {DNNL_ARG_SRC_ITER_C, Mem(s.state(), c0.typed_data())},
        {DNNL_ARG_WEIGHTS_LAYER, wl.mem},
        {DNNL_ARG_WEIGHTS_ITER, wi.mem},
        {DNNL_ARG_BIAS, Mem(s.bias(), b.typed_data())},
        {DNNL_ARG_DST_LAYER, Mem(s.dst_layer(), y->typed_data())},
        {DNNL_ARG_DST_ITER, Mem(s.state(), h_t->typed_data())},
        {DNNL_ARG_DST_ITER_C, Mem(s.state(), c_t->typed_data())},
        {DNNL_ARG_SCRATCHPAD, Mem(f.pd.scratchpad_desc(), Scratch(f.pd.scratchpad_desc().get_size()))},
    };
    if (training) args[DNNL_ARG_WORKSPACE] = Mem(f.pd.workspace_desc(), workspace);
    f.prim.execute(strm, args);
    strm.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN LSTM forward: ") + e.what());
  }
  return ffi::Error::Success();
}

ffi::Error LstmInference(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> h0,
                         ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> w_x,
                         ffi::Buffer<ffi::F32> w_h, ffi::Buffer<ffi::F32> b,
                         ffi::ResultBuffer<ffi::F32> y, ffi::ResultBuffer<ffi::F32> h_t,
                         ffi::ResultBuffer<ffi::F32> c_t) {
  return ForwardImpl(false, x, h0, c0, w_x, w_h, b, y, h_t, c_t, nullptr);
}

ffi::Error LstmTraining(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> h0,
                        ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> w_x,
                        ffi::Buffer<ffi::F32> w_h, ffi::Buffer<ffi::F32> b,
                        ffi::ResultBuffer<ffi::F32> y, ffi::ResultBuffer<ffi::F32> h_t,
                        ffi::ResultBuffer<ffi::F32> c_t, ffi::ResultBuffer<ffi::U8> workspace) {
  return ForwardImpl(true, x, h0, c0, w_x, w_h, b, y, h_t, c_t, workspace->untyped_data());
}

ffi::Error LstmBackward(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> h0,
                        ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> w_x,
                        ffi::Buffer<ffi::F32> w_h, ffi::Buffer<ffi::F32> b,
                        ffi::Buffer<ffi::F32> y, ffi::Buffer<ffi::F32> h_t,
                        ffi::Buffer<ffi::F32> c_t, ffi::Buffer<ffi::U8> workspace,
                        ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> dh_t,
                        ffi::Buffer<ffi::F32> dc_t, ffi::ResultBuffer<ffi::F32> dx,
                        ffi::ResultBuffer<ffi::F32> dh0, ffi::ResultBuffer<ffi::F32> dc0,
                        ffi::ResultBuffer<ffi::F32> dw_x, ffi::ResultBuffer<ffi::F32> dw_h,
                        ffi::ResultBuffer<ffi::F32> db) {
  try {
    const Shape s = ShapeOf(x, w_h);
    Backward& bw = Cached<Backward>(s, true);
    dnnl::stream strm(Engine());
    Reordered wl(Mem(s.w_layer(), w_x.typed_data()), bw.pd.weights_layer_desc(),
                 bw.w_layer_reorder, strm);
    Reordered wi(Mem(s.w_iter(), w_h.typed_data()), bw.pd.weights_iter_desc(),
                 bw.w_iter_reorder, strm);
    std::memset(dw_x->untyped_data(), 0, dw_x->size_bytes());
    std::memset(dw_h->untyped_data(), 0, dw_h->size_bytes());
    std::memset(db->untyped_data(), 0, db->size_bytes());
    bw.prim.execute(strm, {
        {DNNL_ARG_SRC_LAYER, Mem(s.src_layer(), x.typed_data())},
        {DNNL_ARG_SRC_ITER, Mem(s.state(), h0.typed_data())},
        {DNNL_ARG_SRC_ITER_C, Mem(s.state(), c0.typed_data())},
        {DNNL_ARG_WEIGHTS_LAYER, wl.mem},
        {DNNL_ARG_WEIGHTS_ITER, wi.mem},
        {DNNL_ARG_BIAS, Mem(s.bias(), b.typed_data())},
        {DNNL_ARG_DST_LAYER, Mem(s.dst_layer(), y.typed_data())},
        {DNNL_ARG_DST_ITER, Mem(s.state(), h_t.typed_data())},
        {DNNL_ARG_DST_ITER_C, Mem(s.state(), c_t.typed_data())},
        {DNNL_ARG_WORKSPACE, Mem(bw.fwd_pd.workspace_desc(), workspace.untyped_data())},
        {DNNL_ARG_DIFF_DST_LAYER, Mem(s.dst_layer(), dy.typed_data())},
        {DNNL_ARG_DIFF_DST_ITER, Mem(s.state(), dh_t.typed_data())},
        {DNNL_ARG_DIFF_DST_ITER_C, Mem(s.state(), dc_t.typed_data())},
        {DNNL_ARG_DIFF_SRC_LAYER, Mem(s.src_layer(), dx->typed_data())},
        {DNNL_ARG_DIFF_SRC_ITER, Mem(s.state(), dh0->typed_data())},
        {DNNL_ARG_DIFF_SRC_ITER_C, Mem(s.state(), dc0->typed_data())},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, Mem(s.w_layer(), dw_x->typed_data())},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, Mem(s.w_iter(), dw_h->typed_data())},
        {DNNL_ARG_DIFF_BIAS, Mem(s.bias(), db->typed_data())},
        {DNNL_ARG_SCRATCHPAD, Mem(bw.pd.scratchpad_desc(), Scratch(bw.pd.scratchpad_desc().get_size()))},
    });
    strm.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN LSTM backward: ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxLstmInference, LstmInference,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxLstmTraining, LstmTraining,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::U8>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxLstmBackward, LstmBackward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_h
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b
                                  .Arg<ffi::Buffer<ffi::F32>>()  // y
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h_T
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c_T
                                  .Arg<ffi::Buffer<ffi::U8>>()   // workspace
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dy
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dh_T
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dc_T
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dx
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dh0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dc0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw_x
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw_h
                                  .Ret<ffi::Buffer<ffi::F32>>());  // db

// Bytes of the forward-training workspace for a shape (called through ctypes
// at trace time, to size the workspace output); -1 if oneDNN rejects it.
extern "C" int64_t seqjax_lstm_workspace_bytes(int64_t T, int64_t B, int64_t D, int64_t H) {
  try {
    return static_cast<int64_t>(Cached<Forward>(Shape{T, B, D, H}, true).pd.workspace_desc().get_size());
  } catch (const dnnl::error&) {
    return -1;
  }
}
