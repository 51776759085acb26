"""Each augment rule on Malay (and some English) sentences: what it changes, and that it gives nothing where a
change would be garbage or could leave the claim true."""

from __future__ import annotations

import random
import re
from collections import Counter
from types import SimpleNamespace

import pytest

from hakim.data.perturb.maker import RuleCounts, rule_claims
from hakim.data.perturb.numbers import document_values
from hakim.data.perturb.rules import RULES, Facts
from hakim.data.perturb.text import Document, normalize, sentence_spans

FLOOD = (
    "Seramai 412 penduduk dari tujuh kampung di daerah Kuala Krai dipindahkan ke lima pusat pemindahan pada Selasa, "
    "14 Januari. Pegawai Daerah Kuala Krai, Encik Zulkifli Hamzah, berkata Sekolah Kebangsaan Manik Urai menempatkan "
    "mangsa paling ramai iaitu 138 orang. Tiada kematian dilaporkan setakat ini, namun dua jalan utama ke Dabong "
    "ditutup. Pasukan dari Kampung Luak dan Kampung Lusut turut membantu."
)
REGATTA = (
    "Dalam acara utama, pasukan Kampung Luak muncul juara dengan catatan 4 minit 12 saat. "
    "Kategori wanita pula dimenangi pasukan Kampung Lusut. Penyokong dari Miri bersorak sepanjang perlawanan."
)


def document(passage: str, language: str = "ms", claims: tuple[str, ...] = ()) -> Document:
    return Document("doc-1", passage, language, "train", [SimpleNamespace(claim=claim, id="r-1") for claim in claims])


def apply(rule: str, passage: str, sentence: int = 0, language: str = "ms", seed: int = 0):
    doc = document(passage, language)
    return RULES[rule].make(doc.sentences[sentence], doc, Facts(doc), random.Random(seed))


def every_outcome(rule: str, passage: str, sentence: int = 0, language: str = "ms") -> set[str]:
    """The claims a rule writes on a sentence across seeds (its choices are seeded)."""
    return {edit.claim for seed in range(30) if (edit := apply(rule, passage, sentence, language, seed))}


def test_sentences_keep_abbreviations_and_initials_whole_and_map_back_to_the_passage():
    passage = (
        "Graduan perubatan, Dr. Siti Mariam Yusuf, dinobatkan penerima anugerah. Pada 12 Mei 2017, versi "
        "baharu S.W.A.T. telah diperintahkan oleh CBS.\nSiri itu ditayangkan pada bulan November."
    )
    sentences = sentence_spans(passage)
    assert [s.text for s in sentences] == [
        "Graduan perubatan, Dr. Siti Mariam Yusuf, dinobatkan penerima anugerah.",
        "Pada 12 Mei 2017, versi baharu S.W.A.T. telah diperintahkan oleh CBS.",
        "Siri itu ditayangkan pada bulan November.",
    ]
    assert all(passage[s.start : s.end] == s.text for s in sentences)


def test_entity_swap_takes_a_name_of_the_same_document_and_head_word():
    outcomes = every_outcome("entity_swap", REGATTA, 0)
    assert outcomes == {"Dalam acara utama, pasukan Kampung Lusut muncul juara dengan catatan 4 minit 12 saat."}
    edit = apply("entity_swap", REGATTA, 0)
    assert edit.change == {"from": "Kampung Luak", "to": "Kampung Lusut", "kind": "place"}
    assert edit.change["to"] in REGATTA


def test_entity_swap_swaps_people_with_people_and_never_a_name_the_sentence_holds():
    passage = (
        "Penyerang Faris Ramli menjaringkan gol pertama pada minit ke-12. Kedah menyamakan kedudukan melalui "
        "sepakan penalti kapten Azmi Yusof. Jurulatih Encik Roslan Daud berpuas hati."
    )
    outcomes = every_outcome("entity_swap", passage, 1)
    assert outcomes and all(re.search(r"kapten (Faris Ramli|Roslan Daud)\.$", claim) for claim in outcomes)
    assert (
        every_outcome("entity_swap", "Encik Zulkifli Hamzah berkata bekalan makanan mencukupi untuk empat hari.")
        == set()
    )


def test_entity_swap_never_puts_a_region_state_or_country_for_a_town_or_a_name_beside_it():
    passage = (
        "Jambatan kedua menghubungkan Batu Kawan di Seberang Perai dengan Batu Maung. Ia jambatan terpanjang di "
        "Asia Tenggara. Gunung ini terletak di Taman Kinabalu, Sabah."
    )
    bridge = every_outcome("entity_swap", passage, 0)
    assert bridge and not any("Asia Tenggara" in claim or "Sabah" in claim for claim in bridge)
    mountain = every_outcome("entity_swap", passage, 2)  # Sabah, a state, has no other state to trade with
    assert mountain == {"Gunung ini terletak di Seberang Perai, Sabah."}


def changes(claim: str, sentence: str) -> list[tuple[str, str]]:
    """(old, new) words where the claim differs from its sentence."""
    old, new = sentence.split(), claim.split()
    assert len(old) == len(new), (claim, sentence)
    return [(a.strip(".,"), b.strip(".,")) for a, b in zip(old, new, strict=False) if a != b]


def test_number_changes_a_quantity_to_one_the_document_writes_nowhere_in_its_format():
    passage = (
        "Gunung Kinabalu setinggi kira-kira 4,095 meter. Pendakian biasanya mengambil dua hari oleh 5 pendaki. "
        "Hasil padi purata 5.8 tan sehektar."
    )
    doc = document(passage)
    taken = document_values(passage, "ms")
    words = {"dua": 2, "tiga": 3, "empat": 4, "lima": 5}
    for index in range(3):
        outcomes = every_outcome("number", passage, index)
        assert outcomes, index
        for claim in outcomes:
            [(old, new)] = changes(claim, doc.sentences[index].text)
            assert old != new and (words[new] if new in words else float(new.replace(",", ""))) not in taken, claim
    assert {changes(claim, doc.sentences[0].text)[0][1] for claim in every_outcome("number", passage, 0)} <= {
        "5,119",
        "3,071",
        "6,143",
    }  # about a quarter up or down, the thousands separator kept
    assert {
        new
        for claim in every_outcome("number", passage, 1)
        for old, new in changes(claim, doc.sentences[1].text)
        if old == "dua"
    } == {"tiga", "empat"}  # never "lima": the document counts 5 pendaki
    assert {changes(claim, doc.sentences[2].text)[0][1] for claim in every_outcome("number", passage, 2)} <= {
        "7.2",
        "4.4",
        "8.6",
    }  # 58 tenths ± 14


def test_number_never_writes_a_value_the_document_already_gives_whatever_it_counts_there():
    passage = "Pendakian biasanya mengambil dua hari oleh 8 pendaki. Tiga pemandu dan 10 porter mengiringi 12 pelajar."
    # dua -> tiga is taken ("Tiga pemandu"), 8 -> 10 and 8 -> 12 too: one change is left for each number.
    assert every_outcome("number", passage, 0) == {
        "Pendakian biasanya mengambil empat hari oleh 8 pendaki.",
        "Pendakian biasanya mengambil dua hari oleh 6 pendaki.",
    }


def test_number_leaves_years_days_labels_ordinals_and_salah_satu_alone():
    passage = (
        "Pada 14 Januari 2015, salah satu bangunan di Kilometer 41 ditutup selama minit ke-38 oleh Seksyen 39B. "
        "Bangunan itu dibina semula."
    )
    assert apply("number", passage, 0) is None


def test_date_moves_years_days_months_and_weekdays_to_ones_the_document_does_not_name():
    passage = (
        "Banjir melanda pada Selasa, 14 Januari 2015. Pada Rabu, paras air menurun dan jalan dibuka semula. "
        "Jalan itu ditutup sejak tahun 2014."
    )
    outcomes = every_outcome("date", passage, 0)
    assert outcomes
    for claim in outcomes:
        assert "Rabu" not in claim and "2014" not in claim  # named elsewhere in the document
        changed = [(a, b) for a, b in zip(claim.split(), passage.split(), strict=False) if a != b]
        assert len(changed) == 1, claim
    days = {claim.split(", ")[1].split()[0] for claim in outcomes if "Januari 2015" in claim and "Selasa" in claim}
    assert days and all(1 <= int(day) <= 28 and day != "14" for day in days)


def test_negation_adds_one_malay_negator_at_the_first_anchor():
    assert (
        apply("negation", "Gunung Kinabalu ialah gunung tertinggi di Malaysia.").claim
        == "Gunung Kinabalu bukan gunung tertinggi di Malaysia."
    )
    assert (
        apply("negation", "Pulau ini telah diberi status bebas cukai sejak tahun 1987.").claim
        == "Pulau ini belum diberi status bebas cukai sejak tahun 1987."
    )
    assert (
        apply("negation", "Pesta itu turut menampilkan pertandingan makan durian.").claim
        == "Pesta itu tidak turut menampilkan pertandingan makan durian."
    )
    # The reporting verb is passed over: the fact reported is what gets negated.
    assert (
        apply("negation", "Pengarah itu berkata peningkatan itu didorong oleh permintaan dari Eropah.").claim
        == "Pengarah itu berkata peningkatan itu tidak didorong oleh permintaan dari Eropah."
    )
    assert (
        apply("negation", "Menara yang dibina pada tahun 1998 mempunyai 88 tingkat.").claim
        == "Menara yang dibina pada tahun 1998 tidak mempunyai 88 tingkat."
    )  # "yang dibina" is a side clause


def test_negation_removes_a_single_malay_negator_instead_of_stacking_a_second():
    assert (
        apply("negation", "Tumbuhan ini tidak mempunyai daun, batang atau akar sendiri.").claim
        == "Tumbuhan ini mempunyai daun, batang atau akar sendiri."
    )
    assert (
        apply("negation", "Tiada kematian dilaporkan setakat ini di daerah itu.").claim
        == "Ada kematian dilaporkan setakat ini di daerah itu."
    )
    assert (
        apply("negation", "Malaysia belum pernah memenangi pingat emas Olimpik.").claim
        == "Malaysia sudah pernah memenangi pingat emas Olimpik."
    )
    for sentence in (
        "Tidak seperti penyu lain, cengkerangnya tidak keras.",  # two negators
        "Sesiapa boleh menyertai larian itu tidak kira umur mereka.",  # an idiom, not a negation
        "Sarawak terletak di Borneo, bukan di Semenanjung Malaysia.",  # removing bukan breaks the grammar
        "Acara itu berlangsung tanpa sebarang kemalangan jalan raya.",
    ):
        edit = apply("negation", sentence)
        assert edit is None, (sentence, edit)


def test_negation_in_english_adds_not_after_an_auxiliary_and_removes_a_single_not():
    assert (
        apply("negation", "The bridge will open in May with four lanes.", language="en").claim
        == "The bridge will not open in May with four lanes."
    )
    assert (
        apply("negation", "One of them was a minor who was not convicted by the court.", language="en").claim
        == "One of them was a minor who was convicted by the court."
    )
    assert apply("negation", "The specialist was unable to make it from California.", language="en") is None


def test_role_swap_exchanges_two_related_names_of_one_kind_and_never_list_items():
    edit = apply("role_swap", "Pasukan dari Perak menewaskan pasukan dari Selangor dalam perlawanan akhir.")
    assert edit.claim == "Pasukan dari Selangor menewaskan pasukan dari Perak dalam perlawanan akhir."
    assert edit.change == {"swapped": ["Perak", "Selangor"], "kind": "place"}
    for sentence in (
        "Pelancong datang dari Jepun, New Zealand, Korea Selatan dan Kanada setiap tahun.",  # a list
        "Selat ini memisahkan Semenanjung Malaysia dengan pulau Sumatera di Indonesia.",  # symmetric
        "Datuk Bandar Ipoh, Datuk Rumaizi Baharin, berkata bas itu percuma.",  # one person twice
        # a post's words are no names: "Besar", "Kesihatan" cannot trade places with the person
        "Pengurus Besar syarikat, Encik Kamarul Ariffin, berkata 25 lori tangki disediakan.",
        "Pengarah Kesihatan negeri, Dr. Norazlina Rahman, berkata operasi itu dipergiat.",
    ):
        assert apply("role_swap", sentence) is None, sentence


def test_shorter_drops_an_aside_but_never_a_condition_or_a_limit():
    assert (
        apply("shorter", "Namun, pada tahun 1511, Melaka jatuh ke tangan Portugis.").claim
        == "Pada tahun 1511, Melaka jatuh ke tangan Portugis."
    )
    assert (
        apply(
            "shorter", "Gunung ini terletak di Taman Kinabalu, Sabah, yang diiktiraf sebagai Tapak Warisan Dunia."
        ).claim
        == "Gunung ini terletak di Taman Kinabalu, Sabah."
    )
    assert (
        apply("shorter", "Lembaga Minyak Sawit Malaysia (MPOB) mengawal selia industri ini.").claim
        == "Lembaga Minyak Sawit Malaysia mengawal selia industri ini."
    )
    assert apply("shorter", "Jika hujan berterusan, sekolah itu akan ditutup esok.") is None
    assert apply("shorter", "Pemain menang jika jumlahnya sama (tidak termasuk blackjack) dengan peniaga.") is None


def test_reordered_swaps_whole_list_items_only():
    outcomes = every_outcome(
        "reordered", "Bandar-bandar penting seperti Kapit, Sibu dan Kanowit terletak di tebingnya."
    )
    assert outcomes and all(
        sorted(re.findall(r"Kapit|Sibu|Kanowit", claim)) == ["Kanowit", "Kapit", "Sibu"] for claim in outcomes
    )
    foods = every_outcome("reordered", "Minyak sawit digunakan dalam minyak masak, marjerin, sabun dan kosmetik.")
    assert foods and all("minyak masak," in claim for claim in foods)  # the first item's extent is unknown: it stays
    for sentence in (
        "Dewan Bahasa dan Pustaka ditubuhkan pada tahun 1956 di Kuala Lumpur.",
        "Dua gol dijaringkan pada minit ke-67, ke-84 dan ke-90 masing-masing oleh Harith.",
    ):
        assert apply("reordered", sentence) is None, sentence


def test_the_guards_refuse_claims_the_document_states_and_keep_pairs_balanced():
    # The negation of sentence 1 is sentence 2 word for word: that claim is true, so it is refused.
    passage = "Hospital itu mempunyai 180 katil untuk pesakit. Hospital itu tidak mempunyai 180 katil untuk pesakit."
    counts = RuleCounts()
    units = rule_claims(document(passage), ["sentence", "negation"], 4, 5, 60, 0, counts, Counter())
    assert units == [] and counts.refused["negation"] == {"stated in the document": 2}
    units = rule_claims(
        document(FLOOD, claims=("Seramai 412 penduduk dipindahkan.",)),
        list(RULES),
        6,
        5,
        60,
        7,
        RuleCounts(),
        Counter(),
    )
    assert len(units) == 3 and all([claim.label for claim in unit] == [1, 0] for unit in units)
    assert len({unit[0].sentence.index for unit in units}) == 3  # one pair per sentence
    for unit in units:
        assert unit[0].sentence is unit[1].sentence and normalize(unit[1].claim) not in normalize(FLOOD)


@pytest.mark.parametrize("rule", sorted(set(RULES) - {"sentence"}))
def test_a_rule_that_cannot_apply_gives_nothing(rule):
    assert apply(rule, "Lalu mereka pergi sahaja ke sana pagi itu.") is None
