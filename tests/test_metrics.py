import numpy as np
import pytest

from models.metrics import (
    average_precisions,
    cosine_ranking,
    hamming_distance_matrix,
    hamming_ranking,
    precision_at_k,
    retrieval_metrics,
)


def test_average_precision_matches_hand_computation() -> None:
    # Relevance pattern R N R N: AP@all = (1/1 + 2/3) / 2; AP@2 = (1/1) / 1.
    ranking = np.array([[0, 1, 2, 3]])
    db_labels = np.array([5, 7, 5, 7])
    query_labels = np.array([5])
    assert average_precisions(ranking, query_labels, db_labels, None)[0] == pytest.approx(
        (1 + 2 / 3) / 2
    )
    assert average_precisions(ranking, query_labels, db_labels, 2)[0] == pytest.approx(1.0)


def test_query_without_relevant_item_in_top_k_scores_zero() -> None:
    ranking = np.array([[1, 0]])
    assert average_precisions(ranking, np.array([0]), np.array([0, 1]), 1)[0] == 0.0


def test_hamming_ties_break_by_database_index() -> None:
    db = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=bool)
    query = np.array([[1, 1, 0, 0]], dtype=bool)
    assert hamming_distance_matrix(query, db).tolist() == [[0, 2, 0, 4]]
    assert hamming_ranking(query, db).tolist() == [[0, 2, 1, 3]]


def test_cosine_ranking_orders_by_similarity_then_index() -> None:
    db = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    assert cosine_ranking(np.array([[1.0, 0.1]]), db).tolist() == [[0, 2, 1]]


def test_retrieval_metrics_perfect_and_precision() -> None:
    ranking = np.array([[0, 1, 2], [2, 1, 0]])
    db_labels = np.array([0, 0, 1])
    metrics = retrieval_metrics(ranking, np.array([0, 1]), db_labels)
    assert metrics["map@all"] == pytest.approx(1.0)
    assert precision_at_k(ranking, np.array([0, 1]), db_labels, 2) == pytest.approx(0.75)


def test_rejects_mismatched_bit_lengths() -> None:
    with pytest.raises(ValueError):
        hamming_distance_matrix(np.zeros((1, 8), bool), np.zeros((1, 16), bool))
