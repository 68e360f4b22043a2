// Python bindings of the scoring engine: EngineConfig, Engine (plans and results as dicts of numpy arrays;
// genfast/engine/engine.py wraps them in typed objects) and the Student-t functions it uses.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "common/registry.h"
#include "common/tensor_view.h"
#include "engine/engine.h"
#include "engine/student_t.h"

namespace py = pybind11;

namespace genfast {
namespace {

template <typename T>
py::array_t<T> to_array(const std::vector<T>& v, std::vector<py::ssize_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<py::ssize_t>(v.size())};
  py::array_t<T> out(shape);
  if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(T));
  return out;
}

py::dict plan_to_dict(const Plan& p) {
  py::dict d;
  d["image"] = to_array(p.image);
  d["key"] = to_array(p.key);
  d["sample"] = to_array(p.sample);
  d["timestep"] = to_array(p.timestep);
  d["score_weight"] = to_array(p.score_weight);
  d["sample_offsets"] = to_array(p.sample_offsets);
  d["class_index"] = to_array(p.class_index);
  return d;
}

py::dict result_to_dict(const ImageResult& r) {
  const auto K = static_cast<py::ssize_t>(r.scores.size());
  const auto n = static_cast<py::ssize_t>(r.timesteps.size());
  py::dict d;
  d["id"] = r.id;
  d["key"] = r.key;
  d["prediction"] = r.prediction;
  d["scores"] = to_array(r.scores);
  d["n_samples"] = to_array(r.n_samples);
  d["evaluations"] = r.evaluations;
  d["timesteps"] = to_array(r.timesteps);
  d["weights"] = to_array(r.weights);
  d["errors"] = to_array(r.errors, {K, n});
  return d;
}

}  // namespace

void register_engine(py::module_& m) {
  py::class_<EngineConfig>(m, "EngineConfig", "Plain engine configuration built by a method's to_config()")
      .def(py::init<>())
      .def_readwrite("n_classes", &EngineConfig::n_classes)
      .def_readwrite("num_train_timesteps", &EngineConfig::num_train_timesteps)
      .def_readwrite("seed", &EngineConfig::seed)
      .def_readwrite("antithetic", &EngineConfig::antithetic)
      .def_readwrite("timesteps", &EngineConfig::timesteps)
      .def_readwrite("sequence", &EngineConfig::sequence)
      .def_readwrite("density", &EngineConfig::density)
      .def_readwrite("score_weight", &EngineConfig::score_weight)
      .def_readwrite("rule", &EngineConfig::rule)
      .def_readwrite("stage_ends", &EngineConfig::stage_ends)
      .def_readwrite("stage_keep", &EngineConfig::stage_keep)
      .def_readwrite("round_size", &EngineConfig::round_size)
      .def_readwrite("min_samples", &EngineConfig::min_samples)
      .def_readwrite("max_samples", &EngineConfig::max_samples)
      .def_readwrite("p_value", &EngineConfig::p_value)
      .def_readwrite("stopping", &EngineConfig::stopping)
      .def_readwrite("adapt_proposal", &EngineConfig::adapt_proposal)
      .def_readwrite("proposal_bins", &EngineConfig::proposal_bins)
      .def_readwrite("proposal_floor", &EngineConfig::proposal_floor)
      .def_readwrite("boundary_samples", &EngineConfig::boundary_samples)
      .def("validate", &EngineConfig::validate, "Raise ValueError naming the first invalid field");

  py::class_<Engine>(m, "Engine", "Scoring engine: per-image state, pruning, continuous batch planning")
      .def(py::init<EngineConfig>(), py::arg("config"))
      .def(
          "add_images",
          [](Engine& e, py::array_t<uint64_t, py::array::c_style | py::array::forcecast> keys) {
            check(keys.ndim() == 1, "add_images: keys must be one-dimensional");
            return to_array(e.add_images(keys.data(), static_cast<int64_t>(keys.shape(0))));
          },
          py::arg("keys"))
      .def(
          "plan", [](Engine& e, int64_t batch_size) { return plan_to_dict(e.plan(batch_size)); },
          py::arg("batch_size"))
      .def(
          "report",
          [](Engine& e, py::array_t<float, py::array::c_style | py::array::forcecast> errors) {
            check(errors.ndim() == 1, "report: errors must be one-dimensional, got " +
                                          std::to_string(errors.ndim()) + " dimensions");
            e.report(errors.data(), static_cast<int64_t>(errors.shape(0)));
          },
          py::arg("errors"))
      .def("take_finished",
           [](Engine& e) {
             py::list out;
             for (const ImageResult& r : e.take_finished()) out.append(result_to_dict(r));
             return out;
           })
      .def("can_plan", &Engine::can_plan)
      .def("done", &Engine::done)
      .def_property_readonly("n_in_flight", &Engine::n_in_flight);

  m.def("student_t_sf", &student_t_sf, py::arg("t"), py::arg("df"), "P(T_df >= t) for Student's t distribution");
  m.def("regularized_incomplete_beta", &regularized_incomplete_beta, py::arg("a"), py::arg("b"), py::arg("x"),
        "The regularised incomplete beta function I_x(a, b)");
  m.def(
      "paired_t_pvalue",
      [](py::array_t<double, py::array::c_style | py::array::forcecast> d) {
        check(d.ndim() == 1, "paired_t_pvalue: differences must be one-dimensional");
        return paired_t_pvalue(d.data(), static_cast<size_t>(d.shape(0)));
      },
      py::arg("differences"),
      "One-sided paired t-test p-value of H1: mean(d) > 0 (p = 0 / 1 by the sign of the mean when sd is 0)");
  m.def(
      "paired_t_rejects",
      [](py::array_t<double, py::array::c_style | py::array::forcecast> d, double alpha) {
        check(d.ndim() == 1, "paired_t_rejects: differences must be one-dimensional");
        RunningMoments moments;
        for (py::ssize_t i = 0; i < d.shape(0); ++i) moments.add(d.data()[i]);
        return paired_t_rejects(moments, alpha);
      },
      py::arg("differences"), py::arg("alpha"),
      "paired_t_pvalue(differences) < alpha, as the engine decides it (with a normal-tail shortcut)");
  m.def("mixture_boundary", &mixture_boundary, py::arg("n"), py::arg("sd"), py::arg("alpha"),
        py::arg("boundary_samples"),
        "The confidence-sequence radius on the mean of n differences with standard deviation sd, level alpha");
}

}  // namespace genfast
