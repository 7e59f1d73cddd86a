"""Precision and recall of the narrative-name detector on a labelled set of clinical sentences.

    .venv/bin/python bench/names_eval.py          # measure on the labelled set
    .venv/bin/python bench/names_eval.py --build  # (re)write it from the templates below

(the set: tests/fixtures/narrative_labelled.jsonl)

The set is generated from hand-written templates in the style of Finnish clinical narrative
(names of patients and professionals, in several cases, with titles; and sentences full of the
traps: drug names, places, surnames that are common words, eponyms, dates, doses) with a fixed
seed. Names are drawn from the DVV lists (the most common ones, as real text has them). A
predicted span counts if it overlaps a labelled one. Also prints the detector's time per KB.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kanta_guard.detectors.narrative import NarrativeNameDetector  # noqa: E402
from kanta_guard.model import Context, Field  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "narrative_labelled.jsonl"
SEED = 20261201

GIVEN = [
    "Matti",
    "Timo",
    "Juha",
    "Kari",
    "Mikko",
    "Jari",
    "Antti",
    "Jukka",
    "Markku",
    "Pekka",
    "Mika",
    "Hannu",
    "Heikki",
    "Janne",
    "Sami",
    "Ville",
    "Petri",
    "Tuomas",
    "Marko",
    "Lauri",
    "Anne",
    "Tuula",
    "Päivi",
    "Anna",
    "Ritva",
    "Leena",
    "Pirjo",
    "Sari",
    "Minna",
    "Marja",
    "Tiina",
    "Riitta",
    "Maria",
    "Johanna",
    "Satu",
    "Laura",
    "Eeva",
    "Kaisa",
    "Liisa",
    "Hanna",
    "Aino",
    "Elina",
    "Noora",
    "Emilia",
]
SECOND = [
    "Juhani",
    "Olavi",
    "Antero",
    "Tapani",
    "Johannes",
    "Maria",
    "Anneli",
    "Helena",
    "Johanna",
    "Kaarina",
]
HYPHENATED = ["Anna-Liisa", "Marja-Leena", "Eeva-Liisa", "Juha-Pekka", "Anna-Maija"]
# Surnames ending in -nen (their stem changes: Virtanen, Virtasen, Virtaselle, Virtasta).
NEN = [
    "Virtanen",
    "Korhonen",
    "Mäkinen",
    "Nieminen",
    "Mäkelä",
    "Hämäläinen",
    "Laine",
    "Heikkinen",
    "Koskinen",
    "Järvinen",
    "Lehtonen",
    "Lehtinen",
    "Saarinen",
    "Salminen",
    "Heinonen",
    "Niemi",
    "Heikkilä",
    "Kinnunen",
    "Salonen",
    "Turunen",
    "Salo",
    "Laitinen",
    "Tuominen",
    "Rantanen",
    "Karjalainen",
    "Jokinen",
    "Mattila",
    "Savolainen",
    "Lahtinen",
    "Ahonen",
]
NEN = [n for n in NEN if n.endswith("nen")]
# Other surnames, inflected by adding the ending to the base form (no stem change).
PLAIN = [
    "Mäkelä",
    "Heikkilä",
    "Mattila",
    "Hiltunen",
    "Kallio",
    "Leppänen",
    "Aaltonen",
    "Hakala",
    "Lindholm",
    "Ojala",
]
PLAIN = [n for n in PLAIN if not n.endswith("nen")]
TITLES = [
    "lääkäri",
    "ylilääkäri",
    "sairaanhoitaja",
    "hoitaja",
    "osastonhoitaja",
    "tohtori",
    "LL",
    "Dr.",
    "erikoislääkäri",
    "fysioterapeutti",
]
DRUGS = [
    "Marevan",
    "Diapam",
    "Panadol",
    "Burana",
    "Litalgin",
    "Pamol",
    "Somac",
    "Emconcor",
    "Oxynorm",
    "Tramal",
    "Arcoxia",
    "Lyrica",
    "Cipralex",
    "Seroquel",
    "Zopinox",
    "Klexane",
    "Eliquis",
    "Xarelto",
    "Furesis",
    "Ventoline",
    "Lantus",
]
PLACES_IN = [
    "Lahden",
    "Salon",
    "Kotkan",
    "Kuopion",
    "Turun",
    "Koiviston",
    "Rauman",
    "Joensuun",
    "Kokkolan",
    "Kajaanin",
]
PLACES_FROM = [
    "Lahdesta",
    "Salosta",
    "Kotkasta",
    "Kuopiosta",
    "Turusta",
    "Koivistosta",
    "Raumalta",
    "Joensuusta",
]
WORDS_CAP = ["Kivi", "Mäki", "Koski", "Laine", "Salo", "Aalto", "Lampi", "Ranta", "Virta", "Niemi"]
EPONYMS = [
    "Parkinsonin tauti",
    "Alzheimerin tauti",
    "Crohnin tauti",
    "Sjögrenin oireyhtymä",
    "Downin oireyhtymä",
    "Bechterewin tauti",
    "Hodgkinin lymfooma",
    "Bakerin kysta",
    "Aspergerin oireyhtymä",
    "Wilsonin tauti",
]

# -- inflection (the generator's, independent of the detector's lemmatiser) --------------------

_NEN_CASES = {
    "nom": "nen",
    "gen": "sen",
    "all": "selle",
    "abl": "selta",
    "ade": "sella",
    "ela": "sesta",
    "ine": "sessa",
    "par": "sta",
    "ess": "sena",
    "tra": "seksi",
}


def _harmony(word: str, ending: str) -> str:
    back = any(c in "aou" for c in word.lower())
    return ending if back else ending.translate(str.maketrans("aou", "äöy"))


def inflect(surname: str, case: str) -> str:
    """The surname in a case (nominative, genitive, allative, ablative …)."""
    if surname.endswith("nen"):
        return surname[:-3] + _harmony(surname, _NEN_CASES[case])
    plain = {
        "nom": "",
        "gen": "n",
        "all": "lle",
        "abl": "lta",
        "ade": "lla",
        "ela": "sta",
        "ine": "ssa",
        "par": "a",
        "ess": "na",
        "tra": "ksi",
    }[case]
    if surname[-1] not in "aeiouyäö":
        plain = "i" + plain if plain else ""
        if case == "par":
            plain = "ia"
    return surname + _harmony(surname, plain)


# -- templates: {P} a person's full name, {S:case} a full name with the surname in a case,
# {T} a title and a surname (in a case), {C} "Surname, Given"; names are labelled -------------

POSITIVE = [
    "Potilas {P} saapui päivystykseen klo 14.30.",
    "Soitettu omaiselle {S:all}, joka lupasi tulla huomenna.",
    "Tiedot saatu {S:abl} puhelimitse.",
    "Konsultoitu {T:nom}, joka suositteli Marevan-annoksen pienentämistä.",
    "Lähete {T:all} kirjoitettu 12.3.2024.",
    "{P} kotiutuu osastolta 5B.",
    "Hoitaja {P} antoi Panadol 1 g klo 8.",
    "Omainen {P} (tytär) on tietoinen tilanteesta.",
    "Keskusteltu {S:gen} kanssa jatkohoidosta.",
    "{C}; synt. 1950, osasto 3.",
    "Vastaanotolla kävi {P}, verenpaine 142/88.",
    "Puhelu {S:ela} klo 10.15: ei muutoksia vointiin.",
    "Kirjoittanut {T:nom} 4.5.2023.",
    "Jatkohoito {T:gen} vastaanotolla kahden viikon päästä.",
    "Potilaan puoliso {P} toivoo kotiutusta.",
    "Tieto välitetty {S:all} ja {T:all}.",
    "Laboratorio: {P}, Hb 128 g/l.",
    "Lääkärinä {S:ess} toimi päivystyksessä.",
    "Sijaisena {S:ess}: ylilääkäri.",
    "Potilas ohjattu {T:gen} vastaanotolle.",
    "Kontrolli sovittu {S:gen} kanssa.",
    "{P}: ei lääkeaineallergioita.",
    "Kuvaus {T:abl} saatu, ei muutoksia.",
    "Vastuuhoitaja {P}, puh. sisäinen 123.",
    "Saattajana {P}.",
    "Ilmoitettu {S:all}: Diapam 5 mg tarvittaessa.",
    "Lausunto {S:par} odotetaan.",
    "Yhteystieto: {C}.",
    "Hoitoneuvottelu, läsnä {P} ja {P}.",
    "Siirto {S:abl} osastolle 7.",
    # Harder ones.
    "Toivo {P} kävi kontrollissa.",
    "Tytär {P} Kuopiosta soitti.",
    "{P}, {P} ja {P} osallistuivat neuvotteluun.",
    "potilas {P} kotiutui",
    "Keskustelu: {T:ade} ei huomautettavaa.",
]

NEGATIVE = [
    "Marevan 5 mg illalla, INR-kontrolli 14.3.2024.",
    "Diapam 5 mg tarvittaessa, enintään 3 kertaa vuorokaudessa.",
    "Panadol 1 g x 3 kipuun.",
    "Anna {D} 1 tabletti illalla.",
    "Potilas siirretään {PI} keskussairaalaan.",
    "Kotiutuu {PI} terveyskeskukseen.",
    "Potilas muutti {PF} vuonna 2019.",
    "Hoitaja {PF} soitti ja kertoi vuodepaikasta.",
    "{W} poistettiin virtsanjohtimesta.",
    "Kuvauksessa todettiin {w} munuaisessa.",
    "Potilaalla todettu {E}.",
    "Epäily {E}sta, jatkotutkimukset.",
    "Asuu Aleksis Kiven kadulla, hissitalo.",
    "Vointi hyvä, RR 128/76, p 72, SpO2 97 %.",
    "Kontrolli 3 kk kuluttua, laboratorio: PVK, CRP, Krea.",
    "{D} lopetettu 1.2.2024 haittavaikutusten vuoksi.",
    "Virtanen soitti aamulla.",
    "Vastaanotolla {W}n hoitaja.",
    "Ohjattu {PI} aluesairaalan poliklinikalle.",
    "Lääkitys: {D} 10 mg x 1, {D} 40 mg x 1.",
    "Toivo paranemisesta on hyvä.",
    "Aamu sujui hyvin, ei kipuja.",
    "Anna Lahden päivystykselle tieto.",
    "{E} diagnosoitu 2015.",
    "KOTIUTUS: vointi hyvä, jatko {PI} terveyskeskuksessa.",
    "Hoitaja soitti {PF} klo 9.",
    "Päivystys {PI} yliopistollinen sairaala.",
    "Koski-lampi on potilaan mökin lähellä.",
    "Tulosyy: kaatuminen, {w} murtuma.",
    "Maanantaina 5.2. kontrolli, Burana 400 mg.",
    # Harder ones: given names that are words, institutions, bacteria, headings.
    "Eli Korhosen mukaan kipu on helpottanut.",
    "Anna Koskelle tieto kotiutuksesta.",
    "Toivo Salosta on ollut apua.",
    "Viljely: Staphylococcus aureus, Escherichia coli.",
    "LÄÄKITYS: MAREVAN 3 MG, PANADOL 1 G.",
    "Siirto Marian sairaalaan, sitten Auroran sairaalaan.",
    "Potilas ohjattu Mehiläinen Ruoholahteen.",
    "Helmi Kiven kaltainen kovettuma palpoituu.",
    "Lasse Virénin koulun terveydenhoitaja soitti.",
    "Tapaturma Kotkan satamassa, kuljetus {PI} keskussairaalaan.",
]


def _person(rng: random.Random, upper: bool = False) -> str:
    kind = rng.random()
    if kind < 0.15:
        given = rng.choice(HYPHENATED)
    elif kind < 0.3:
        given = f"{rng.choice(GIVEN)} {rng.choice(SECOND)}"
    else:
        given = rng.choice(GIVEN)
    name = f"{given} {rng.choice(NEN + PLAIN)}"
    return name.upper() if upper else name


def render(template: str, rng: random.Random) -> tuple[str, list[list[int]]]:
    """One sentence of a template and the spans of the names in it."""
    out: list[str] = []
    spans: list[list[int]] = []
    pos = 0
    upper = rng.random() < 0.05
    for match in re.finditer(r"\{(\w)(?::(\w+))?\}", template):
        out.append(template[pos : match.start()])
        at = sum(map(len, out))
        slot, case = match.group(1), match.group(2)
        if slot == "P":
            name = _person(rng, upper)
            spans.append([at, at + len(name)])
        elif slot == "S":
            given = rng.choice(GIVEN)
            name = f"{given} {inflect(rng.choice(NEN + PLAIN), case or 'nom')}"
            spans.append([at, at + len(name)])
        elif slot == "T":
            title = rng.choice(TITLES)
            surname = inflect(rng.choice(NEN + PLAIN), case or "nom")
            name = f"{title} {surname}"
            spans.append([at + len(title) + 1, at + len(name)])
        elif slot == "C":
            name = f"{rng.choice(NEN + PLAIN)}, {rng.choice(GIVEN)}"
            spans.append([at, at + len(name)])
        elif slot == "D":
            name = rng.choice(DRUGS)
        elif slot == "E":
            name = rng.choice(EPONYMS)
        elif slot == "W":
            name = rng.choice(WORDS_CAP)
        elif slot == "w":
            name = rng.choice(WORDS_CAP).lower()
        elif slot == "I":
            name = rng.choice(PLACES_IN)
        else:
            name = rng.choice(PLACES_IN if case == "I" else PLACES_FROM)
        out.append(name)
        pos = match.end()
    out.append(template[pos:])
    return "".join(out), spans


def _expand(template: str) -> str:
    return template.replace("{PI}", "{X:I}").replace("{PF}", "{X:F}")


def build(count: int = 360, seed: int = SEED) -> list[dict[str, object]]:
    """The labelled set: half positive, half trap sentences, with a fixed seed."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for n in range(count):
        templates = POSITIVE if n % 2 == 0 else NEGATIVE
        text, spans = render(_expand(templates[(n // 2) % len(templates)]), rng)
        rows.append({"text": text, "names": spans})
    return rows


def evaluate(rows: list[dict[str, object]]) -> dict[str, float]:
    """Precision, recall and F1 (a prediction counts if it overlaps a label), time per KB."""
    detector = NarrativeNameDetector()
    tp = fp = fn = 0
    total_bytes = 0
    elapsed = 0.0
    for row in rows:
        text = str(row["text"])
        labels = [tuple(s) for s in row["names"]]  # type: ignore[attr-defined]
        field = Field(text, Context(), "x")
        start = time.perf_counter()
        hits = list(detector.detect(field))
        elapsed += time.perf_counter() - start
        total_bytes += len(text.encode())
        predicted = []
        for hit in hits:
            at = text.find(hit.raw)
            predicted.append((at, at + len(hit.raw)))
        for p in predicted:
            if any(p[0] < b and a < p[1] for a, b in labels):
                tp += 1
            else:
                fp += 1
                print("FP:", text, "->", text[p[0] : p[1]])
        for a, b in labels:
            if not any(p[0] < b and a < p[1] for p in predicted):
                fn += 1
                print("FN:", text, "->", text[a:b])
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "us_per_kb": elapsed / (total_bytes / 1024) * 1e6,
        "sentences": len(rows),
        "labels": tp + fn,
    }


def main() -> None:
    if "--build" in sys.argv:
        rows = build()
        FIXTURE.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
        print(f"wrote {len(rows)} sentences to {FIXTURE}")
    rows = [json.loads(line) for line in FIXTURE.read_text("utf-8").splitlines() if line]
    result = evaluate(rows)
    print(
        f"{result['sentences']} sentences, {result['labels']} names: "
        f"precision {result['precision']:.3f}, recall {result['recall']:.3f}, "
        f"F1 {result['f1']:.3f}; detect {result['us_per_kb']:.0f} µs/KB"
    )


if __name__ == "__main__":
    main()
