"""A small recording double of the TensorRT builder API, enough for `build_engine` on a CPU.

`make_tensorrt("10.3.0")` or `make_tensorrt("11.4.0.106")` returns a stand-in for the
`tensorrt` module. Every public attribute read, write and call on it and on the
objects it returns is recorded in `double._recorder` with its arguments.

It stays honest two ways: it offers only names that the real bindings of that
version have (`offered_names`, checked against the wheels' symbol tables by
tests/export/engine/test_tensorrt_contract.py), and what it offers per version follows
those tables (e.g. BuilderFlag.FP16 only on 10.x, SAME_COMPUTE_CAPABILITY only on 11).
Behaviour beyond names (the plan bytes, the phases reported) is invented and only as
rich as the tests need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Event:
    kind: str  # "get", "set" or "call"
    owner: str  # the TensorRT class (or "tensorrt" for the module)
    name: str
    args: tuple = ()
    kwargs: tuple = ()  # (key, value) pairs


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, kind: str, owner: str, name: str, args: tuple = (),
            kwargs: dict | None = None) -> None:
        self.events.append(Event(kind, owner, name, tuple(args), tuple((kwargs or {}).items())))

    def calls(self, owner: str, name: str) -> list[tuple[tuple, dict]]:
        return [(e.args, dict(e.kwargs)) for e in self.events
                if e.kind == "call" and (e.owner, e.name) == (owner, name)]

    def sets(self, owner: str, name: str) -> list[Any]:
        return [e.args[0] for e in self.events
                if e.kind == "set" and (e.owner, e.name) == (owner, name)]

    def names(self) -> set[str]:
        """Every TensorRT name touched: attributes, enum members, keyword arguments."""
        names = {e.name for e in self.events}
        names |= {key for e in self.events for key, _ in e.kwargs}
        # Python's dunders (the recorded __init__ of a constructor) are not TensorRT names.
        return {n for n in names if not n.startswith("_") or n == "__version__"}


class _Fake:
    """Records public attribute reads and writes under the owner's TensorRT name."""

    _owner = "?"

    def __init__(self, recorder: Recorder) -> None:
        object.__setattr__(self, "_recorder", recorder)

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if not name.startswith("_") or name == "__version__":
            object.__getattribute__(self, "_recorder").add(
                "get", object.__getattribute__(self, "_owner"), name)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            self._recorder.add("set", self._owner, name, (value,))
        object.__setattr__(self, name, value)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        self._recorder.add("call", self._owner, name, args, kwargs)

    def _offer(self, **attributes: Any) -> None:
        """Set attributes without recording: the double building itself is not a use."""
        for key, value in attributes.items():
            object.__setattr__(self, key, value)


def peek(obj: Any, *path: str) -> Any:
    """Read obj.a.b... without recording it: the double's and the tests' reads are not uses."""
    for name in path:
        obj = object.__getattribute__(obj, name)
    return obj


class Member:
    """An enum member: int() like the real pybind11 enums, printed as Enum.NAME."""

    def __init__(self, enum: str, name: str, value: int) -> None:
        self._enum, self._name, self._value = enum, name, value

    def __int__(self) -> int:
        return self._value

    __index__ = __int__

    def __repr__(self) -> str:
        return f"{self._enum}.{self._name}"

    __str__ = __repr__


class Enum(_Fake):
    def __init__(self, recorder: Recorder, owner: str, members: list[str], start: int = 0) -> None:
        super().__init__(recorder)
        object.__setattr__(self, "_owner", owner)
        self._offer(**{m: Member(owner, m, i + start) for i, m in enumerate(members)})


class TrtType(_Fake):
    """A TensorRT class object: callable to construct, class-level constants readable."""

    def __init__(self, recorder: Recorder, owner: str, make: Callable[..., Any],
                 **constants: Any) -> None:
        super().__init__(recorder)
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_make", make)
        self._offer(**constants)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._call("__init__", *args, **kwargs)
        return self._make(*args, **kwargs)


@dataclass
class Scenario:
    """What the double's TensorRT does: parse errors, DLA cores, failures."""

    parse_errors: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    build_fails: bool = False
    num_dla_cores: int = 0
    timing_cache_compatible: bool = True
    phases: list[tuple[str, str | None, int]] = field(
        default_factory=lambda: [("Building engine", None, 2),
                                 ("Tactic timing", "Building engine", 3)])
    plan: bytes = b"\x7fTRT-PLAN\x00fake engine bytes"


class Logger(_Fake):
    _owner = "Logger"

    def __init__(self, recorder: Recorder, min_severity: Member) -> None:
        super().__init__(recorder)
        self._offer(min_severity=min_severity)


class INetworkDefinition(_Fake):
    _owner = "INetworkDefinition"

    def __init__(self, recorder: Recorder, flags: int) -> None:
        super().__init__(recorder)
        object.__setattr__(self, "_flags", flags)


class ParserError(_Fake):
    _owner = "ParserError"

    def __init__(self, recorder: Recorder, node: int, node_name: str, operator: str, desc: str,
                 code: Member) -> None:
        super().__init__(recorder)
        object.__setattr__(self, "_fields", (node, node_name, operator, desc, code))

    def node(self) -> int:
        return self._fields[0]

    def node_name(self) -> str:
        return self._fields[1]

    def node_operator(self) -> str:
        return self._fields[2]

    def desc(self) -> str:
        return self._fields[3]

    def code(self) -> Member:
        return self._fields[4]


class OnnxParser(_Fake):
    _owner = "OnnxParser"

    def __init__(self, recorder: Recorder, scenario: Scenario, codes: Enum,
                 network: INetworkDefinition, logger: Logger) -> None:
        super().__init__(recorder)
        object.__setattr__(self, "_errors", [
            ParserError(recorder, node, name, op, desc, peek(codes, code))
            for node, name, op, desc, code in scenario.parse_errors])
        object.__setattr__(self, "_parsed", [])

    def parse_from_file(self, model: str) -> bool:
        self._call("parse_from_file", model)
        self._parsed.append(model)
        return not self._errors

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError:
        self._call("get_error", index)
        return self._errors[index]


class ITimingCache(_Fake):
    _owner = "ITimingCache"

    def __init__(self, recorder: Recorder, data: bytes) -> None:
        super().__init__(recorder)
        object.__setattr__(self, "_data", bytes(data))

    def serialize(self) -> memoryview:
        self._call("serialize")
        return memoryview(self._data + b"+timings")


class IOptimizationProfile(_Fake):
    _owner = "IOptimizationProfile"

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002
        self._call("set_shape", input, tuple(min), tuple(opt), tuple(max))


class IBuilderConfig(_Fake):
    _owner = "IBuilderConfig"

    def __init__(self, recorder: Recorder, scenario: Scenario, trt: "FakeTensorRT") -> None:
        super().__init__(recorder)
        object.__setattr__(self, "_scenario", scenario)
        object.__setattr__(self, "_cache", None)
        self._offer(builder_optimization_level=3,
                    hardware_compatibility_level=peek(trt, "HardwareCompatibilityLevel", "NONE"),
                    default_device_type=peek(trt, "DeviceType", "GPU"), DLA_core=-1,
                    progress_monitor=None)

    def set_memory_pool_limit(self, pool: Member, pool_size: int) -> None:
        self._call("set_memory_pool_limit", pool, pool_size)

    def set_flag(self, flag: Member) -> None:
        self._call("set_flag", flag)

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        self._call("create_timing_cache", bytes(serialized_timing_cache))
        return ITimingCache(self._recorder, serialized_timing_cache)

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        self._call("set_timing_cache", cache, ignore_mismatch=ignore_mismatch)
        if self._scenario.timing_cache_compatible:
            object.__setattr__(self, "_cache", cache)
        return self._scenario.timing_cache_compatible

    def get_timing_cache(self) -> ITimingCache:
        self._call("get_timing_cache")
        return self._cache

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self._call("add_optimization_profile", profile)
        return 0


class IProgressMonitor:
    """Subclassed by the code under test, so a real class; the Builder records its calls."""

    def __init__(self) -> None:
        pass


class Builder(_Fake):
    _owner = "Builder"

    def __init__(self, recorder: Recorder, scenario: Scenario, trt: "FakeTensorRT",
                 logger: Logger) -> None:
        super().__init__(recorder)
        object.__setattr__(self, "_scenario", scenario)
        object.__setattr__(self, "_trt", trt)

    @property
    def num_DLA_cores(self) -> int:  # noqa: N802 - TensorRT's name
        return self._scenario.num_dla_cores

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        self._call("create_network", flags)
        return INetworkDefinition(self._recorder, flags)

    def create_builder_config(self) -> IBuilderConfig:
        self._call("create_builder_config")
        return IBuilderConfig(self._recorder, self._scenario, self._trt)

    def create_optimization_profile(self) -> IOptimizationProfile:
        self._call("create_optimization_profile")
        return IOptimizationProfile(self._recorder)

    def build_serialized_network(self, network: INetworkDefinition,
                                 config: IBuilderConfig) -> memoryview | None:
        self._call("build_serialized_network", network, config)
        monitor = peek(config, "progress_monitor")
        if monitor is not None:
            self._report_progress(monitor)
        return None if self._scenario.build_fails else memoryview(self._scenario.plan)

    def _report_progress(self, monitor: IProgressMonitor) -> None:
        record = self._recorder.add
        for phase, parent, steps in self._scenario.phases:
            record("call", "IProgressMonitor", "phase_start", (phase, parent, steps))
            monitor.phase_start(phase, parent, steps)
        for phase, parent, steps in reversed(self._scenario.phases):
            for step in range(steps):
                record("call", "IProgressMonitor", "step_complete", (phase, step))
                if monitor.step_complete(phase, step) is not True:
                    raise AssertionError("step_complete must return True to continue the build")
            record("call", "IProgressMonitor", "phase_finish", (phase,))
            monitor.phase_finish(phase)


class FakeTensorRT(_Fake):
    _owner = "tensorrt"

    def __init__(self, version: str, scenario: Scenario) -> None:
        recorder = Recorder()
        super().__init__(recorder)
        major = int(version.split(".")[0])
        object.__setattr__(self, "__version__", version)
        object.__setattr__(self, "_scenario", scenario)
        levels = ["NONE", "AMPERE_PLUS"] + (["SAME_COMPUTE_CAPABILITY"] if major >= 11 else [])
        # TensorRT 10 still has the weak-typing flags (FP16 is in 10.3's symbol table),
        # so the tests can see that they are never set; 11 removed them.
        flags = ["VERSION_COMPATIBLE", "GPU_FALLBACK", "EXCLUDE_LEAN_RUNTIME"]
        flags += ["FP16"] if major == 10 else []
        self._offer(
            BuilderFlag=Enum(recorder, "BuilderFlag", flags),
            # 11 keeps STRONGLY_TYPED (deprecated, ignored), so both versions offer it.
            NetworkDefinitionCreationFlag=Enum(recorder, "NetworkDefinitionCreationFlag",
                                               ["STRONGLY_TYPED"], start=1 if major == 10 else 0),
            MemoryPoolType=Enum(recorder, "MemoryPoolType", ["WORKSPACE"]),
            HardwareCompatibilityLevel=Enum(recorder, "HardwareCompatibilityLevel", levels),
            DeviceType=Enum(recorder, "DeviceType", ["GPU", "DLA"]),
            ErrorCode=Enum(recorder, "ErrorCode", ["SUCCESS", "INTERNAL_ERROR", "INVALID_NODE",
                                                   "UNSUPPORTED_NODE", "INVALID_GRAPH"]),
            IProgressMonitor=IProgressMonitor,
        )
        severities = Enum(recorder, "Logger", ["VERBOSE", "WARNING"])
        self._offer(
            Logger=TrtType(recorder, "Logger", lambda severity: Logger(recorder, severity),
                           VERBOSE=peek(severities, "VERBOSE"),
                           WARNING=peek(severities, "WARNING")),
            Builder=TrtType(recorder, "Builder",
                            lambda logger: Builder(recorder, scenario, self, logger)),
            OnnxParser=TrtType(recorder, "OnnxParser",
                               lambda network, logger: OnnxParser(
                                   recorder, scenario, peek(self, "ErrorCode"),
                                   network, logger)),
        )


def make_tensorrt(version: str = "10.3.0", **scenario: Any) -> FakeTensorRT:
    """A recording stand-in for the `tensorrt` module of `version`; see Scenario for options."""
    return FakeTensorRT(version, Scenario(**scenario))


FAKE_CLASSES = (Logger, INetworkDefinition, ParserError, OnnxParser, ITimingCache,
                IOptimizationProfile, IBuilderConfig, IProgressMonitor, Builder)


def offered_names(version: str) -> set[str]:
    """Every TensorRT name the double of `version` offers: classes, members, enum values.

    Python's own dunders and the double's underscored helpers are not TensorRT names;
    __version__ is (the real package sets it in its __init__.py).
    """
    double = make_tensorrt(version)
    names = {"__version__"}
    for key, value in vars(double).items():
        if key.startswith("_"):
            continue
        names.add(key)
        if isinstance(value, _Fake):
            names |= {k for k in vars(value) if not k.startswith("_")}
    for cls in FAKE_CLASSES:
        names.add(cls.__name__)
        names |= {k for k in vars(cls) if not k.startswith("_")}
    recorder = Recorder()
    for instance in (IBuilderConfig(recorder, Scenario(), double), Logger(recorder, None)):
        names |= {k for k in vars(instance) if not k.startswith("_")}
    # Parameter names the tests' code passes by keyword must exist too.
    names.add("ignore_mismatch")
    return names
