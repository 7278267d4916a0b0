// oneDNN's RNN primitives as XLA FFI custom calls (CPU only; see onednn.py).
//
// Cells (the `cell` attribute): 0 LSTM, 1 GRU with the reset gate applied
// after the recurrent product (oneDNN's linear-before-reset GRU), 2 tanh RNN,
// 3 ReLU RNN. Layouts (row-major, float32):
//   x (T, B, D)  h0 [, c0] (B, H)  w_x (D, G*H)  w_h (H, G*H)  b (G'*H)  y (T, B, H)
// G = 4 (LSTM: i, f, g, o), 3 (GRU: u, r, n; oneDNN's order, which onednn.py
// arranges), 1 (RNN); G' = G except the GRU, whose bias has a fourth block,
// the recurrent candidate bias inside the reset product. (D, G*H) read as
// (1, 1, D, G, H) is oneDNN's `ldigo` weights layout, and x, y may also be
// batch-major, (B, T, D) and (B, T, H) (attribute `batch_major`: oneDNN's
// `ntc` layout), so no data is rearranged on the way in or out. With
// `reverse` the primitive runs right to left (outputs stay in input order).
//
// Primitives are built once per (cell, shape) and cached. Weights are
// reordered into the layout each primitive prefers on every call (one pass
// over W, as PyTorch's mkldnn RNN does). oneDNN's backward pass *accumulates*
// into the weight and bias gradients, so those outputs are zeroed first.

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
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

enum CellKind : int32_t { kLstm = 0, kGru = 1, kRnnTanh = 2, kRnnRelu = 3 };

dnnl::engine& Engine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

struct Shape {
  int32_t cell;
  int64_t T, B, D, H;
  bool batch_major, reverse;
  int64_t gates() const { return cell == kLstm ? 4 : cell == kGru ? 3 : 1; }
  int64_t bias_gates() const { return cell == kGru ? 4 : gates(); }
  tag layer_tag() const { return batch_major ? tag::ntc : tag::tnc; }
  memory::desc src_layer() const { return {{T, B, D}, dt::f32, layer_tag()}; }
  memory::desc state() const { return {{1, 1, B, H}, dt::f32, tag::ldnc}; }
  memory::desc w_layer(tag t = tag::ldigo) const { return {{1, 1, D, gates(), H}, dt::f32, t}; }
  memory::desc w_iter(tag t = tag::ldigo) const { return {{1, 1, H, gates(), H}, dt::f32, t}; }
  memory::desc bias() const { return {{1, 1, bias_gates(), H}, dt::f32, tag::ldgo}; }
  memory::desc dst_layer() const { return {{T, B, H}, dt::f32, layer_tag()}; }
  dnnl::rnn_direction direction() const {
    return reverse ? dnnl::rnn_direction::unidirectional_right2left
                   : dnnl::rnn_direction::unidirectional_left2right;
  }
  bool operator<(const Shape& o) const {
    return std::tie(cell, T, B, D, H, batch_major, reverse) <
           std::tie(o.cell, o.T, o.B, o.D, o.H, o.batch_major, o.reverse);
  }
};

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::algorithm Activation(const Shape& s) {
  return s.cell == kRnnTanh ? dnnl::algorithm::eltwise_tanh : dnnl::algorithm::eltwise_relu;
}

dnnl::primitive_desc ForwardDesc(const Shape& s, bool training) {
  const auto kind = training ? dnnl::prop_kind::forward_training
                             : dnnl::prop_kind::forward_inference;
  const auto w_layer = s.w_layer(tag::any), w_iter = s.w_iter(tag::any);
  switch (s.cell) {
    case kLstm:
      return dnnl::lstm_forward::primitive_desc(
          Engine(), kind, s.direction(), s.src_layer(), s.state(), s.state(), w_layer, w_iter,
          s.bias(), s.dst_layer(), s.state(), s.state(), UserScratchpad());
    case kGru:
      return dnnl::lbr_gru_forward::primitive_desc(
          Engine(), kind, s.direction(), s.src_layer(), s.state(), w_layer, w_iter, s.bias(),
          s.dst_layer(), s.state(), UserScratchpad());
    default:
      return dnnl::vanilla_rnn_forward::primitive_desc(
          Engine(), kind, Activation(s), s.direction(), s.src_layer(), s.state(), w_layer,
          w_iter, s.bias(), s.dst_layer(), s.state(), UserScratchpad());
  }
}

dnnl::primitive_desc BackwardDesc(const Shape& s, const dnnl::primitive_desc& fwd) {
  const auto kind = dnnl::prop_kind::backward;
  const auto w_layer = s.w_layer(tag::any), w_iter = s.w_iter(tag::any);
  switch (s.cell) {
    case kLstm:
      return dnnl::lstm_backward::primitive_desc(
          Engine(), kind, s.direction(), s.src_layer(), s.state(), s.state(), w_layer, w_iter,
          s.bias(), s.dst_layer(), s.state(), s.state(), s.src_layer(), s.state(), s.state(),
          s.w_layer(), s.w_iter(), s.bias(), s.dst_layer(), s.state(), s.state(),
          dnnl::lstm_forward::primitive_desc(fwd.get()), UserScratchpad());
    case kGru:
      return dnnl::lbr_gru_backward::primitive_desc(
          Engine(), kind, s.direction(), s.src_layer(), s.state(), w_layer, w_iter, s.bias(),
          s.dst_layer(), s.state(), s.src_layer(), s.state(), s.w_layer(), s.w_iter(),
          s.bias(), s.dst_layer(), s.state(),
          dnnl::lbr_gru_forward::primitive_desc(fwd.get()), UserScratchpad());
    default:
      return dnnl::vanilla_rnn_backward::primitive_desc(
          Engine(), kind, Activation(s), s.direction(), s.src_layer(), s.state(), w_layer,
          w_iter, s.bias(), s.dst_layer(), s.state(), s.src_layer(), s.state(), s.w_layer(),
          s.w_iter(), s.bias(), s.dst_layer(), s.state(),
          dnnl::vanilla_rnn_forward::primitive_desc(fwd.get()), UserScratchpad());
  }
}

memory::desc ArgDesc(const dnnl::primitive_desc& pd, int arg) {
  return pd.query_md(dnnl::query::exec_arg_md, arg);
}

// A primitive with the reorders of the user's weights into its preferred layout.
struct Prepared {
  dnnl::primitive_desc pd;
  dnnl::primitive prim;
  dnnl::reorder w_layer_reorder, w_iter_reorder;
  Prepared(const Shape& s, dnnl::primitive_desc desc)
      : pd(std::move(desc)),
        prim(pd),
        w_layer_reorder(dnnl::reorder::primitive_desc(
            Engine(), s.w_layer(), Engine(), ArgDesc(pd, DNNL_ARG_WEIGHTS_LAYER))),
        w_iter_reorder(dnnl::reorder::primitive_desc(
            Engine(), s.w_iter(), Engine(), ArgDesc(pd, DNNL_ARG_WEIGHTS_ITER))) {}
};

enum Stage { kInference, kTraining, kBackward };

Prepared& Cached(const Shape& s, Stage stage) {
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<Shape, int>, std::unique_ptr<Prepared>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*cache)[{s, stage}];
  if (!slot) {
    slot = std::make_unique<Prepared>(
        s, stage == kBackward ? BackwardDesc(s, ForwardDesc(s, true))
                              : ForwardDesc(s, stage == kTraining));
  }
  return *slot;
}

// oneDNN's scratchpad (tens of MB for long sequences) and the reordered
// weights. A fresh buffer per call costs more than the RNN itself (the page
// faults of first touch), and XLA runs custom calls on whichever of its
// threads is free, so the buffers are pooled process-wide rather than per
// thread. A call borrows the smallest free buffer that fits (best fit, so that
// a small weight never takes the scratchpad's buffer and forces a fresh one),
// or else replaces the largest free one by a bigger one, and returns it when
// done. Buffers are never read before they are written, so they are not
// cleared.
class ScratchPool {
 public:
  struct Lease {
    ScratchPool* pool;
    std::unique_ptr<char[]> data;
    size_t size;
    ~Lease() { pool->Return(std::move(data), size); }
  };

  std::unique_ptr<Lease> Borrow(size_t bytes) {
    std::unique_ptr<char[]> data;
    size_t size = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto fit = free_.lower_bound(bytes);
      if (fit == free_.end() && !free_.empty()) fit = std::prev(free_.end());
      if (fit != free_.end()) {
        size = fit->first;
        data = std::move(fit->second);
        free_.erase(fit);
      }
    }
    if (size < bytes) {
      data.reset(new char[bytes]);
      size = bytes;
    }
    return std::unique_ptr<Lease>(new Lease{this, std::move(data), size});
  }

 private:
  void Return(std::unique_ptr<char[]> data, size_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.emplace(size, std::move(data));
  }
  std::mutex mu_;
  std::multimap<size_t, std::unique_ptr<char[]>> free_;
};

ScratchPool& Scratch() {
  static auto* pool = new ScratchPool();
  return *pool;
}

memory Mem(const memory::desc& d, const void* data) {
  return memory(d, Engine(), const_cast<void*>(data));
}

// A weight in the primitive's layout: the user's buffer if it already is,
// else a reordered copy in a pooled buffer.
struct Weight {
  std::unique_ptr<ScratchPool::Lease> storage;
  memory mem;
  Weight(memory user, const memory::desc& want, const dnnl::reorder& r, dnnl::stream& strm) {
    if (user.get_desc() == want) {
      mem = user;
      return;
    }
    storage = Scratch().Borrow(want.get_size());
    mem = memory(want, Engine(), storage->data.get());
    r.execute(strm, user, mem);
  }
};

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;

// The layout flags an FFI call passes as attributes.
struct Layout {
  bool batch_major, reverse;
};

Shape ShapeOf(int32_t cell, Layout layout, const F32& x, const F32& w_h) {
  auto xd = x.dimensions();
  const int64_t t = layout.batch_major ? xd[1] : xd[0], b = layout.batch_major ? xd[0] : xd[1];
  return Shape{cell, t, b, xd[2], w_h.dimensions()[0], layout.batch_major, layout.reverse};
}

ffi::Error CheckCell(int32_t cell) {
  if (cell < kLstm || cell > kRnnRelu) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "unknown cell " + std::to_string(cell));
  }
  return ffi::Error::Success();
}

// What the forward and backward passes share: the cached primitive, the
// weights in its layout, a pooled scratchpad, and the arguments every RNN
// primitive takes (c0/c_t are null for the cells without a memory cell).
struct Call {
  Shape s;
  Prepared& p;
  dnnl::stream strm;
  Weight wl, wi;
  std::unique_ptr<ScratchPool::Lease> scratch;
  std::unordered_map<int, memory> args;

  Call(const Shape& shape, Stage stage, const F32& x, const F32& h0, const void* c0,
       const F32& w_x, const F32& w_h, const F32& b, const void* y, const void* h_t,
       const void* c_t)
      : s(shape),
        p(Cached(s, stage)),
        strm(Engine()),
        wl(Mem(s.w_layer(), w_x.typed_data()), ArgDesc(p.pd, DNNL_ARG_WEIGHTS_LAYER),
           p.w_layer_reorder, strm),
        wi(Mem(s.w_iter(), w_h.typed_data()), ArgDesc(p.pd, DNNL_ARG_WEIGHTS_ITER),
           p.w_iter_reorder, strm),
        scratch(Scratch().Borrow(p.pd.scratchpad_desc().get_size())),
        args({
            {DNNL_ARG_SRC_LAYER, Mem(s.src_layer(), x.typed_data())},
            {DNNL_ARG_SRC_ITER, Mem(s.state(), h0.typed_data())},
            {DNNL_ARG_WEIGHTS_LAYER, wl.mem},
            {DNNL_ARG_WEIGHTS_ITER, wi.mem},
            {DNNL_ARG_BIAS, Mem(s.bias(), b.typed_data())},
            {DNNL_ARG_DST_LAYER, Mem(s.dst_layer(), y)},
            {DNNL_ARG_DST_ITER, Mem(s.state(), h_t)},
            {DNNL_ARG_SCRATCHPAD, Mem(p.pd.scratchpad_desc(), scratch->data.get())},
        }) {
    if (c0) {
      args[DNNL_ARG_SRC_ITER_C] = Mem(s.state(), c0);
      args[DNNL_ARG_DST_ITER_C] = Mem(s.state(), c_t);
    }
  }

  void Run() {
    p.prim.execute(strm, args);
    strm.wait();
  }
};

// Forward pass; c0/c_t are null for the cells without a memory cell and
// workspace is null for inference.
ffi::Error Forward(int32_t cell, Layout layout, const F32& x, const F32& h0, const F32* c0,
                   const F32& w_x, const F32& w_h, const F32& b, F32Out& y, F32Out& h_t,
                   F32Out* c_t, void* workspace) {
  if (auto err = CheckCell(cell); err.failure()) return err;
  try {
    Call call(ShapeOf(cell, layout, x, w_h), workspace ? kTraining : kInference, x, h0,
              c0 ? c0->typed_data() : nullptr, w_x, w_h, b, y->typed_data(), h_t->typed_data(),
              c_t ? (*c_t)->typed_data() : nullptr);
    if (workspace) {
      call.args[DNNL_ARG_WORKSPACE] = Mem(call.p.pd.workspace_desc(), workspace);
    }
    call.Run();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN RNN forward: ") + e.what());
  }
  return ffi::Error::Success();
}

struct Gradients {
  F32Out *dx, *dh0, *dc0, *dw_x, *dw_h, *db;
};

ffi::Error Backward(int32_t cell, Layout layout, const F32& x, const F32& h0, const F32* c0,
                    const F32& w_x, const F32& w_h, const F32& b, const F32& y, const F32& h_t,
                    const F32* c_t,
                    const ffi::Buffer<ffi::U8>& workspace, const F32& dy, const F32& dh_t,
                    const F32* dc_t, Gradients g) {
  if (auto err = CheckCell(cell); err.failure()) return err;
  try {
    Call call(ShapeOf(cell, layout, x, w_h), kBackward, x, h0,
              c0 ? c0->typed_data() : nullptr, w_x, w_h, b, y.typed_data(), h_t.typed_data(),
              c_t ? c_t->typed_data() : nullptr);
    for (F32Out* out : {g.dw_x, g.dw_h, g.db}) {
      std::memset((*out)->untyped_data(), 0, (*out)->size_bytes());
    }
    const Shape& s = call.s;
    call.args.insert({
        {DNNL_ARG_WORKSPACE, Mem(call.p.pd.workspace_desc(), workspace.untyped_data())},
        {DNNL_ARG_DIFF_DST_LAYER, Mem(s.dst_layer(), dy.typed_data())},
        {DNNL_ARG_DIFF_DST_ITER, Mem(s.state(), dh_t.typed_data())},
        {DNNL_ARG_DIFF_SRC_LAYER, Mem(s.src_layer(), (*g.dx)->typed_data())},
        {DNNL_ARG_DIFF_SRC_ITER, Mem(s.state(), (*g.dh0)->typed_data())},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, Mem(s.w_layer(), (*g.dw_x)->typed_data())},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, Mem(s.w_iter(), (*g.dw_h)->typed_data())},
        {DNNL_ARG_DIFF_BIAS, Mem(s.bias(), (*g.db)->typed_data())},
    });
    if (c0) {
      call.args[DNNL_ARG_DIFF_DST_ITER_C] = Mem(s.state(), dc_t->typed_data());
      call.args[DNNL_ARG_DIFF_SRC_ITER_C] = Mem(s.state(), (*g.dc0)->typed_data());
    }
    call.Run();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN RNN backward: ") + e.what());
  }
  return ffi::Error::Success();
}

// ---- LSTM: carries (h, c) ----

ffi::Error LstmInference(F32 x, F32 h0, F32 c0, F32 w_x, F32 w_h, F32 b, F32Out y, F32Out h_t,
                         F32Out c_t, bool batch_major, bool reverse) {
  return Forward(kLstm, {batch_major, reverse}, x, h0, &c0, w_x, w_h, b, y, h_t, &c_t, nullptr);
}

ffi::Error LstmTraining(F32 x, F32 h0, F32 c0, F32 w_x, F32 w_h, F32 b, F32Out y, F32Out h_t,
                        F32Out c_t, ffi::ResultBuffer<ffi::U8> workspace, bool batch_major,
                        bool reverse) {
  return Forward(kLstm, {batch_major, reverse}, x, h0, &c0, w_x, w_h, b, y, h_t, &c_t,
                 workspace->untyped_data());
}

ffi::Error LstmBackward(F32 x, F32 h0, F32 c0, F32 w_x, F32 w_h, F32 b, F32 y, F32 h_t, F32 c_t,
                        ffi::Buffer<ffi::U8> workspace, F32 dy, F32 dh_t, F32 dc_t, F32Out dx,
                        F32Out dh0, F32Out dc0, F32Out dw_x, F32Out dw_h, F32Out db,
                        bool batch_major, bool reverse) {
  return Backward(kLstm, {batch_major, reverse}, x, h0, &c0, w_x, w_h, b, y, h_t, &c_t, workspace,
                  dy, dh_t, &dc_t, {&dx, &dh0, &dc0, &dw_x, &dw_h, &db});
}

// ---- GRU and RNN: carry h ----

ffi::Error HInference(F32 x, F32 h0, F32 w_x, F32 w_h, F32 b, F32Out y, F32Out h_t,
                      int32_t cell, bool batch_major, bool reverse) {
  return Forward(cell, {batch_major, reverse}, x, h0, nullptr, w_x, w_h, b, y, h_t, nullptr,
                 nullptr);
}

ffi::Error HTraining(F32 x, F32 h0, F32 w_x, F32 w_h, F32 b, F32Out y, F32Out h_t,
                     ffi::ResultBuffer<ffi::U8> workspace, int32_t cell, bool batch_major,
                     bool reverse) {
  return Forward(cell, {batch_major, reverse}, x, h0, nullptr, w_x, w_h, b, y, h_t, nullptr,
                 workspace->untyped_data());
}

ffi::Error HBackward(F32 x, F32 h0, F32 w_x, F32 w_h, F32 b, F32 y, F32 h_t,
                     ffi::Buffer<ffi::U8> workspace, F32 dy, F32 dh_t, F32Out dx, F32Out dh0,
                     F32Out dw_x, F32Out dw_h, F32Out db, int32_t cell, bool batch_major,
                     bool reverse) {
  return Backward(cell, {batch_major, reverse}, x, h0, nullptr, w_x, w_h, b, y, h_t, nullptr,
                  workspace, dy, dh_t, nullptr, {&dx, &dh0, nullptr, &dw_x, &dw_h, &db});
}

}  // namespace

#define F32_ARG Arg<ffi::Buffer<ffi::F32>>()
#define F32_RET Ret<ffi::Buffer<ffi::F32>>()
#define LAYOUT_ATTRS Attr<bool>("batch_major").Attr<bool>("reverse")

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxLstmInference, LstmInference,
                              ffi::Ffi::Bind()
                                  .F32_ARG.F32_ARG.F32_ARG    // x, h0, c0
                                  .F32_ARG.F32_ARG.F32_ARG    // w_x, w_h, b
                                  .F32_RET.F32_RET.F32_RET  // y, h_T, c_T
                                  .LAYOUT_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxLstmTraining, LstmTraining,
                              ffi::Ffi::Bind()
                                  .F32_ARG.F32_ARG.F32_ARG  // x, h0, c0
                                  .F32_ARG.F32_ARG.F32_ARG  // w_x, w_h, b
                                  .F32_RET.F32_RET.F32_RET  // y, h_T, c_T
                                  .Ret<ffi::Buffer<ffi::U8>>()  // workspace
                                  .LAYOUT_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxLstmBackward, LstmBackward,
                              ffi::Ffi::Bind()
                                  .F32_ARG.F32_ARG.F32_ARG     // x, h0, c0
                                  .F32_ARG.F32_ARG.F32_ARG     // w_x, w_h, b
                                  .F32_ARG.F32_ARG.F32_ARG     // y, h_T, c_T
                                  .Arg<ffi::Buffer<ffi::U8>>()  // workspace
                                  .F32_ARG.F32_ARG.F32_ARG     // dy, dh_T, dc_T
                                  .F32_RET.F32_RET.F32_RET     // dx, dh0, dc0
                                  .F32_RET.F32_RET.F32_RET     // dw_x, dw_h, db
                                  .LAYOUT_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxHInference, HInference,
                              ffi::Ffi::Bind()
                                  .F32_ARG.F32_ARG           // x, h0
                                  .F32_ARG.F32_ARG.F32_ARG   // w_x, w_h, b
                                  .F32_RET.F32_RET           // y, h_T
                                  .Attr<int32_t>("cell")
                                  .LAYOUT_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxHTraining, HTraining,
                              ffi::Ffi::Bind()
                                  .F32_ARG.F32_ARG           // x, h0
                                  .F32_ARG.F32_ARG.F32_ARG   // w_x, w_h, b
                                  .F32_RET.F32_RET           // y, h_T
                                  .Ret<ffi::Buffer<ffi::U8>>()  // workspace
                                  .Attr<int32_t>("cell")
                                  .LAYOUT_ATTRS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(SeqjaxHBackward, HBackward,
                              ffi::Ffi::Bind()
                                  .F32_ARG.F32_ARG              // x, h0
                                  .F32_ARG.F32_ARG.F32_ARG      // w_x, w_h, b
                                  .F32_ARG.F32_ARG              // y, h_T
                                  .Arg<ffi::Buffer<ffi::U8>>()  // workspace
                                  .F32_ARG.F32_ARG              // dy, dh_T
                                  .F32_RET.F32_RET              // dx, dh0
                                  .F32_RET.F32_RET.F32_RET      // dw_x, dw_h, db
                                  .Attr<int32_t>("cell")
                                  .LAYOUT_ATTRS);

// Bytes of the forward-training workspace of a cell and shape (called through
// ctypes at trace time, to size the workspace output); -1 if oneDNN rejects it.
extern "C" int64_t seqjax_rnn_workspace_bytes(int32_t cell, int64_t T, int64_t B, int64_t D,
                                              int64_t H, bool batch_major, bool reverse) {
  if (cell < kLstm || cell > kRnnRelu) return -1;
  try {
    return static_cast<int64_t>(Cached(Shape{cell, T, B, D, H, batch_major, reverse}, kTraining)
                                    .pd.workspace_desc().get_size());
  } catch (const dnnl::error&) {
    return -1;
  }
}
