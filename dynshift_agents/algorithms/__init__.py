"""Offline learners in three layers: the generic trainer (:mod:`.agent`), the Stable-Baselines3
learner layer (:mod:`.sb3`) with the model-free learners on it, and the model-based layer
(:mod:`.model_based`) with MOPO, AugWM and RAMBO; FB (:mod:`.fb`) has its own training block on the
generic trainer. :mod:`.registry` knows them by name."""

from dynshift_agents.algorithms.agent import Agent, AgentConfig, DivergenceError, UnsafeCheckpointError
from dynshift_agents.algorithms.augwm import AugWM, AugWMConfig
from dynshift_agents.algorithms.awr import AWR, AWRConfig
from dynshift_agents.algorithms.bc import BC, BCConfig
from dynshift_agents.algorithms.bcq import BCQ, BCQConfig
from dynshift_agents.algorithms.bear import BEAR, BEARConfig
from dynshift_agents.algorithms.bracp import BRACP, BRACConfig
from dynshift_agents.algorithms.cql import CQL, CQLConfig
from dynshift_agents.algorithms.encoder import ObservationEncoder
from dynshift_agents.algorithms.fb import FB, FBConfig
from dynshift_agents.algorithms.iql import IQL, IQLConfig
from dynshift_agents.algorithms.model_based import LEARNERS, ModelBasedAgent, ModelBasedConfig
from dynshift_agents.algorithms.mopo import MOPO, MOPOConfig
from dynshift_agents.algorithms.rambo import RAMBO, RAMBOConfig
from dynshift_agents.algorithms.registry import (ALGORITHMS, MODEL_BASED, algorithm_class, describe, load,
                                                 needs_world_model)
from dynshift_agents.algorithms.sb3 import SB3Agent, SB3Config
from dynshift_agents.algorithms.td3bc import TD3BC, TD3BCConfig

__all__ = ["ALGORITHMS", "AWR", "AWRConfig", "Agent", "AgentConfig", "AugWM", "AugWMConfig", "BC", "BCConfig", "BCQ",
           "BCQConfig", "BEAR", "BEARConfig", "BRACConfig", "BRACP", "CQL", "CQLConfig",
           "DivergenceError", "FB", "FBConfig", "IQL", "IQLConfig", "LEARNERS", "MODEL_BASED", "MOPO", "MOPOConfig", "ModelBasedAgent",
           "ModelBasedConfig", "ObservationEncoder", "RAMBO", "RAMBOConfig", "SB3Agent", "SB3Config", "TD3BC",
           "TD3BCConfig", "UnsafeCheckpointError", "algorithm_class", "describe", "load", "needs_world_model"]
