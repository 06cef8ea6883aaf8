"""Suite-wide options."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# The property tests draw the same examples on every run, so that a red suite is red again
# when rerun, on any machine. HYPOTHESIS_PROFILE=explore draws new ones (and keeps the ones
# that failed in .hypothesis/ to try first next time): use it to look for new failures.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/trace.json from the current code (a deliberate change)",
    )


# The longest tests, longest first (from `--durations`): pytest-xdist hands each worker a
# run of tests in collection order and lets an idle worker take the end of another's
# queue, so that long tests started first leave short ones for the end and neither core
# waits long for the other. A whole module when its tests share a module fixture (moving
# only some of them would make the fixture twice). Others keep their order, after these.
LONGEST_FIRST = (
    "tests/test_input_fuzz.py",
    "tests/test_frontier.py",
    "tests/test_theory.py",
    "tests/test_instructions_benchmark.py::test_instructions_benchmark_counts_every_part",
    "tests/test_report.py",
    "tests/test_properties.py",
    "tests/test_precision.py",
    "tests/test_notebooks.py",
    "tests/test_calibration.py",
    "tests/test_parallel_benchmark.py",
    "tests/test_fitting_folders.py",
    "tests/test_optimise.py",
    "tests/test_calibrate.py",
    "tests/test_policy_baselines.py",
    "tests/test_policies.py",
    "tests/test_command_resume.py",
    "tests/test_sensitivity.py",
    "tests/test_custom_policy_doc.py",
    "tests/test_replay.py",
    "tests/test_optimise_folder.py",
)


# Left out of the quick loop (`pytest -m "not slow"`), beside the tests marked `slow` in
# their files: each took 3 s or more on a quiet machine (about 15 s at load 8; see
# `--durations`), or shares a module fixture that does. The full suite and CI run them.
# A test's name stands for all its parameters, a file's for all its tests.
LONG_FOR_THE_QUICK_LOOP = (
    *(
        f"tests/test_frontier.py::test_{name}"
        for name in (
            "the_kpi_rises_with_the_fleet_at_every_step",
            "every_points_stations_file_reproduces_its_row_exactly",
            "each_answer_is_the_smallest_fleet_whose_lower_bound_meets_its_target",
            "the_report_has_a_frontier_section",
            "the_frontier_on_a_dask_cluster_equals_local_processes",
            "an_interrupted_frontier_resumes_with_every_finished_run",
        )
    ),
    "tests/test_report.py",  # each test reads the `run_dir` fixture, a run of 2 x 2 days
    "tests/test_properties.py::test_both_policies_see_the_same_calls",
    "tests/test_properties.py::test_records_are_consistent",
    "tests/test_precision.py::test_the_command_stops_with_the_half_width_under_the_target",
    "tests/test_precision.py::test_every_point_of_a_sweep_gets_its_own_replications",
    "tests/test_theory.py::test_single_station_is_mmc",
    "tests/test_theory.py::test_hotline_with_abandonment_is_erlang_a",
    "tests/test_theory.py::test_hotline_alone_is_erlang_c",
    "tests/test_fitting_folders.py::test_a_changed_input_file_or_policy_source_runs_again",
    "tests/test_fitting_folders.py::test_interrupted_then_rerun_runs_only_what_is_missing",
    "tests/test_fitting_folders.py::test_calibrate_flags_only_the_parameter_without_effect",
    *(
        f"tests/test_optimise.py::test_{name}"
        for name in (
            "accepted_moves_never_make_the_objective_worse",  # the `searched` fixture
            "rejected_moves_leave_the_incumbent_alone",
            "the_search_is_run_on_common_random_numbers",
            "a_search_run_again_resumes_from_its_store",
            "the_stations_file_reloads_and_reproduces_the_reported_kpis",
            "the_folder_holds_the_changes_the_history_and_the_figures",
            "report_on_a_design_folder",
            "fewer_vans_never_break_the_requirement",
            "mclp_seeding_keeps_fixed_stations_and_the_station_limit",
        )
    ),
    "tests/test_calibrate.py::test_recovers_moved_parameters",  # the `recovered` fixture
    "tests/test_calibrate.py::test_lands_on_targets",
    "tests/test_calibrate.py::test_writes_a_scenario_that_loads",
    "tests/test_policy_baselines.py::test_move_up_beats_the_published_rule_on_its_bench",
    "tests/test_policy_baselines.py::test_policy_matches_its_baseline",
    *(
        f"tests/test_policies.py::test_{name}"
        for name in (
            "backup_beats_nearest_station_when_a_neighbour_is_idle",  # the `overloaded` fixture
            "priority_raises_the_fleet_segments_on_time_rate",
            "preparedness_keeps_promises_better_than_the_published_rule",
            "assert_no_worse_fails_with_the_interval",
            "kpi_at_least",
            "compare_cli_prints_paired_table_and_writes_files",
            "contractor_overflow_hands_late_jobs_to_local_shops",
            "priority_hotline_answers_fleets_first",
        )
    ),
    "tests/test_replay.py::test_the_report_embeds_the_replay_of_the_busiest_day",
    "tests/test_custom_policy_doc.py::test_move_up_example_beats_the_same_dispatch_without_move_up",
    "tests/test_custom_policy_doc.py::test_example_policy_runs_from_the_cli_by_module_path",
    "tests/test_command_resume.py::test_a_changed_input_file_or_policy_source_runs_again",
    "tests/test_command_resume.py::test_an_interrupted_command_resumes_with_only_the_missing_runs",
    "tests/test_sensitivity.py::test_dominant_parameter_ranks_first",
    "tests/test_sensitivity.py::test_figure_and_files",
    "tests/test_optimise_folder.py::test_an_interrupted_search_resumes_with_the_runs_it_finished",
    "tests/test_optimise_folder.py::test_a_changed_policy_source_runs_them_again",
    "tests/test_optimise_folder.py::test_a_changed_input_file_runs_them_again",
    "tests/test_file_outputs.py::test_a_fifo_is_refused_and_never_opened",
    "tests/test_file_outputs.py::test_fit_demand_never_opens_a_fifo_for_its_weights",
    "tests/test_geo.py::test_nearest_station_agrees_with_geopy_scan",
    "tests/test_plots.py::test_run_figures_render_without_missing_glyphs",
    "tests/test_plots.py::test_plot_command_on_a_sweep_folder",
    "tests/test_plots.py::test_policy_comparison_from_compare",
    "tests/test_store_recovery.py::test_an_unreadable_part_is_set_aside_and_its_run_done_again",
    "tests/test_rosters.py::test_a_night_roster_lowers_night_on_time_arrival",
    "tests/test_scheduler_address.py::test_a_server_that_is_not_a_dask_scheduler_is_one_line",
    "tests/test_scenario_library.py::test_henan_surge_raises_calls_and_sinks_on_time_arrival",
    "tests/test_scenario_library.py::test_henan_rescues_match_the_published_order_of_magnitude",
    # 2 s or more on a quiet machine (6 s or more at load 6), for the quick loop's 2 minutes:
    "tests/test_api_errors.py::test_readme_snippet_as_a_plain_script",
    "tests/test_custom_policy_doc.py::test_example_policy_spreads_load_over_neighbours",
    "tests/test_dask.py::test_the_command_runs_a_sweep_on_the_cluster",
    "tests/test_determinism.py::test_cli_run_writes_folder_and_prints_headline_rates",
    "tests/test_determinism.py::test_compare_shares_one_pool_with_the_same_results",
    "tests/test_engine.py::test_a_failing_point_does_not_stop_the_others",
    "tests/test_engine.py::test_a_failure_raises_once_the_others_have_run",
    "tests/test_engine.py::test_a_network_is_built_once_per_point",
    "tests/test_engine.py::test_results_do_not_depend_on_workers_or_order",
    "tests/test_engine.py::test_tables_are_written_by_the_runs_and_read_back_from_the_store",
    "tests/test_fitting_folders.py::test_a_folder_with_files_is_refused_without_overwrite",
    "tests/test_hardened_values.py::test_a_sweep_file_past_the_alias_limit_is_refused",
    "tests/test_kpi_catalogue.py::test_no_second_headline_list_and_no_share_rule_by_name",
    "tests/test_kpi_catalogue.py::test_published_figures_yaml_is_read_in_one_module",
    "tests/test_lazy_imports.py::test_a_replication_loads_no_plotting_and_no_scipy_stats",
    "tests/test_lazy_imports.py::test_public_names_still_import_from_sim",
    "tests/test_lazy_imports.py::test_run_loads_no_plotting_and_no_scipy_stats",
    "tests/test_lazy_imports.py::test_validate_loads_the_scenario_and_network_only",
    "tests/test_maps.py::test_maps_name_their_places_without_overlap",
    "tests/test_output_folder.py::test_two_runs_on_one_folder_at_once",
    "tests/test_policies.py::test_a_regressed_baseline_names_kpi_baseline_new_value_and_interval",
    "tests/test_replay.py::test_a_broken_timestamp_is_caught",
    "tests/test_replay.py::test_counters_equal_the_run_tables_at_three_times",
    "tests/test_replay.py::test_screenshots_at_two_times_differ_in_the_vans",
    "tests/test_sweep_file.py::test_a_grid_file_is_the_grid_of_vary",
    "tests/test_sweep_file.py::test_the_command_runs_a_sweep_file",
)


def _long_for_the_quick_loop(item: pytest.Item) -> bool:
    name = item.nodeid.split("[")[0]  # every parameter of a listed test
    return name in LONG_FOR_THE_QUICK_LOOP or name.split("::")[0] in LONG_FOR_THE_QUICK_LOOP


def _rank(item: pytest.Item) -> int:
    for rank, prefix in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _long_for_the_quick_loop(item):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_rank)  # stable: each module's own order is kept
