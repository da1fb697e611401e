"""
The rl_zoo3 configs (``<config>.yml``, ``methods.yml``) and one rl_zoo3 config module per method
(``<config>_<method>.py``), shipped with the package; see ``README.md`` here. In a checkout, ``zoo_configs/`` at the
repository root is a link to this directory; from an installed package, pass rl_zoo3 the module name
(``--conf-file sb3_equivariant.zoo_configs.ppo_equivariant``).
"""
