"""Answers from what was read: the row a question is about, its value, and the arithmetic the
question asks for, computed (tools/calculate.py), never guessed.

A question about one item finds the entry (a row's label and values, or a table cell under
its column) whose words match the question's. The words are the document's own: a question
word that stands nowhere in the document counts for nothing, whatever its language, and a
word that stands in many rows counts for less than a rare one ("Cappuccino" over "Café").
OCR's slips and plurals still match ("croissants", "Cappucino").

What the question wants done with the entries comes from its values first (two times in
"how long between the 07:50 and the 08:35?" are a difference, whatever the words) and then
from a few words, in the languages of the documents people bring (totals, change, splitting a
bill, the first or last, the cheapest, which page, yes or no). Those word lists only choose
the arithmetic; they never decide which row is meant.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tools import days, trips
from tools import values as V
from tools.layout import Cell, Layout, Row, heads_columns


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c)).replace("ß", "ss")


def words(text: str) -> list[str]:
    """The words of `text` (letters, any script; digits aside), folded: case and accents."""
    text = NON.sub("non", _fold(text))  # "non-calculator" is not "calculator"
    return [w for w in re.findall(r"[^\W\d_]+", text) if len(w) >= 2 or not w.isascii()]


NEGATIONS = frozenset("not non no nicht kein keine pas sans sin senza sem niet geen".split())
ARTICLES = frozenset("a an ein eine un une una uno um uma een".split())
NON = re.compile(r"(?<![^\W\d_])non[-\u2010\u2011](?=[^\W\d_])")


def _cue(*stems: str) -> re.Pattern:
    return re.compile(r"(?<!\w)(?:" + "|".join(stems) + r")", re.I)


# What the question wants done. Hints for choosing the arithmetic, in the documents' languages.
TOTAL = _cue(r"total", r"altogether", r"all together", r"together", r"in all\b", r"sum\b",
             r"combined", r"both\b", r"add(?:ed)? up", r"come to", r"comes to", r"insgesamt",
             r"zusammen", r"ensemble", r"en tout", r"en total", r"in totale", r"totaal",
             r"how much (?:for|would|will|do|does|is it for)", r"what would .* cost",
             r"how much .* and ")
CHANGE = _cue(r"change\b", r"get back", r"back from", r"paid? with", r"paying with",
              r"pay with", r"hand over", r"from an? \d", r"from a (?:ten|twenty|fifty|hundred)",
              r"rendu", r"wechselgeld", r"cambio\b", r"resto\b")
SPLIT = _cue(r"split", r"share", r"each\b", r"per (?:person|head)", r"apiece", r"divid",
             r"between \d", r"among \d", r"pro person", r"par personne", r"por persona")
LEAST = _cue(r"cheapest", r"least expensive", r"lowest", r"smallest", r"minimum", r"cheaper",
             r"moins cher", r"billigste", r"günstigste", r"mas barat", r"più economic")
MOST = _cue(r"most expensive", r"dearest", r"priciest", r"highest", r"largest", r"biggest",
            r"maximum", r"more expensive", r"le plus cher", r"teuerste", r"mas car",
            r"più car")
FIRST = _cue(r"first\b", r"earliest", r"premier", r"première", r"erste", r"primer", r"prim[oa]\b")
LAST = _cue(r"last\b", r"latest", r"final\b", r"dernier", r"dernière", r"letzte", r"[uú]ltim")
AFTER = _cue(r"after\b", r"next\b", r"from\b", r"following", r"later than", r"après",
             r"nach\b", r"después", r"dopo")
BEFORE = _cue(r"before\b", r"earlier than", r"by\b", r"avant", r"vor\b", r"antes", r"prima")
PAGE = _cue(r"which page", r"what page", r"on page", r"page (?:is|has|number)", r"pages? \?",
            r"welche seite", r"quelle page", r"qu[eé] p[aá]gina")
DAYS = _cue(r"days?\b", r"how long until", r"how many weeks", r"tage\b", r"jours\b", r"d[ií]as\b")
MINUTES = _cue(r"how long", r"minutes?\b", r"gap", r"difference", r"between", r"wait",
               r"how much time", r"duration", r"takes?\b")
YES_NO = re.compile(r"^\s*(?:[^,?]*,\s*"  # after a clause: "if I pay 20, is ...", and
                    r"|(?:if|wenn|si|se|als)\s(?:(?!\b(?:what|how|which|who|where|when)\b)"
                    r"[^?,])*?\s)?"  # "if my order is 25 do I get ..."
                    r"(?:so\s+|and\s+|but\s+|ok\s+|hey\s+)?(?:is|are|am|was|were|do|does|did|"
                    r"can|could|will|would|has|have|had|should|shall|may|must|any)\b"
                    r"(?![^?]*\b(?:how|what|which)\b)", re.I)  # "if we are 3, how much?"
NEGATIVE = _cue(r"no\b(?![.:]|\s*\d)", r"not\b", r"non\b", r"none\b", r"never\b", r"closed\b", r"cancel", r"n/a\b",
                r"kein", r"nicht\b", r"geschlossen", r"ferm[eé]", r"pas de\b", r"aucun",
                r"cerrad", r"sin\b", r"chius", r"nessun", r"geen\b", r"gesloten", r"fechad",
                r"sem\b", r"nao\b", r"não\b", r"—$", r"-$", r"✗", r"×$")
# what is left of a limit or an order: used of allowed, delivered of ordered
LEFT = _cue(r"left\b", r"remain", r"still\b", r"outstanding", r"to go\b", r"übrig", r"ubrig",
            r"verbleib", r"restant", r"reste\b", r"queda", r"restante", r"rimanen", r"resta\b",
            r"sobra", r"over\b")
# the words with which a document names its total ("Total", "Summe", "Importe")
TOTAL_ROW = _cue(r"total", r"summe", r"gesamt", r"somme", r"montant", r"importe", r"totale",
                 r"amount due", r"balance due", r"to pay", r"à payer", r"zu zahlen", r"a pagar",
                 r"da pagare", r"te betalen", r"grand total", r"bedrag", r"betrag")
AND = re.compile(r"(?<!\w)(?:and|und|et|y|e|en|plus|with|mit|avec|con|com)(?!\w)|[,&+]", re.I)
# a request for the whole text, not one thing in it ("what does it say?", "read it to me")
READ_ALL = _cue(r"say", r"says", r"said", r"read", r"text", r"written", r"writing", r"transcri",
                r"words?\b", r"letters", r"everything", r"all of it", r"whole", r"steht",
                r"[eé]crit", r"dice\b", r"pone\b", r"c'?è scritto", r"staat")
PER = _cue(r"per\b", r"each\b", r"a night", r"a day", r"an hour", r"one\b", r"apiece",
           r"pro\b", r"par\b", r"por\b")
ENDS = _cue(r"finish", r"end\b", r"ends\b", r"over\b", r"done\b", r"get out", r"arriv")
# the end of a range of hours ("10am - 7pm"): until when is it open, when does it close
UNTIL = _cue(r"until when", r"till when", r"until what time", r"clos", r"shut", r"bis wann",
             r"jusqu", r"hasta qu", r"fino a che", r"at[eé] que horas", r"tot hoe laat")
# the words for a document itself: "how much is the bill?" asks its total
PAPER = {"bill", "invoice", "receipt", "ticket", "facture", "rechnung", "factura", "fattura",
         "factuur", "fatura", "quittung", "bon", "kassenbon", "ricevuta", "recibo",
         "conto", "note", "addition", "total"}
WITHOUT = _cue(r"without", r"except", r"minus", r"leaving out", r"not counting", r"ohne\b",
               r"sans\b", r"sin\b", r"senza", r"zonder", r"sem\b")
HOW_MANY = _cue(r"how many", r"number of(?! (?:this|that|the|my|our|your)\b)", r"wie viele", r"combien de", r"cu[aá]nt[oa]s",
                r"quant[ie]\b", r"hoeveel")
# the kind of value a question asks for: what it asks decides among entries that match
WANTS = {
    "money": _cue(r"how much", r"cost", r"price", r"pay", r"paid", r"charge", r"fee\b",
                  r"fare", r"spend", r"spent", r"owe", r"amount", r"[€$£]", r"combien",
                  r"wie ?viel", r"cu[aá]nto", r"quanto"),
    "time": _cue(r"when\b", r"what time", r"at what", r"depart", r"leave", r"leaving",
                 r"arriv", r"open", r"clos", r"start", r"begin", r"until when", r"till when",
                 r"wann", r"quand", r"cu[aá]ndo", r"a che ora", r"hoe laat"),
    "span": _cue(r"how long", r"how many (?:minutes|hours)", r"minutes?\b", r"hours?\b",
                 r"duration", r"valid for"),
    "date": _cue(r"when\b", r"what date", r"which date", r"which day", r"what day", r"date\b",
                 r"\bdue\b", r"valid", r"expir", r"born", r"birth", r"until when",
                 r"till when"),
    "count": HOW_MANY,
    "weight": _cue(r"how heavy", r"weigh", r"wiegt", r"gewicht", r"poids", r"peso"),
    "person": _cue(r"who\b", r"whose", r"whom", r"who's", r"name\b", r"wer\b", r"wessen",
                   r"qui\b", r"quien", r"quién", r"chi\b", r"quem"),
    "code": _cue(r"reference", r"\bref\b", r"number\b", r"\bno\.", r"code\b", r"\bid\b",
                 r"iban", r"account", r"booking", r"tracking", r"order", r"registration",
                 r"\breg\b", r"plate", r"licen[cs]e", r"password", r"pin\b"),
}
WHEN = _cue(r"when\b", r"what (?:date|day|time)", r"which (?:date|day)", r"until when",
            r"at what time", r"wann", r"quand", r"cu[aá]ndo", r"quando")
# Words for the same thing in the languages of the documents people bring: a question's
# word also finds the document's ("change" finds "Rückgeld"). They widen a match only.
GLOSSARY = [set(group.split()) for group in """
total sum summe gesamt gesamtbetrag totale importe montant somme totaal bedrag
change ruckgeld wechselgeld cambio rendu resto wisselgeld troco monnaie
paid payment pay bezahlt zahlung paye paiement pagado pago pagato pagamento betaald betaling
price cost prix preis precio prezzo prijs preco tarif tarifs tariff tarifa fare
date datum fecha data fecha
time uhrzeit heure hora ora tijd
seat platz place siege asiento posto stoel lugar
row reihe rang fila rij
number no nr num numero nummer
invoice rechnung facture factura fattura factuur fatura bill
due fallig faellig echeance vencimiento scadenza vervaldatum vencimento
birth geburt naissance nacimiento nascita geboorte nascimento born
valid gultig valable valido geldig validite gultigkeit
expires expiry expire expiration runout ablauf expiration caduca scadenza verloopt
child children kid kids kind kinder enfant enfants nino ninos bambino bambini crianca
adult adults erwachsene erwachsener adulte adultes adulto adulti volwassene
student students studenten etudiant estudiante studente student
senior seniors rentner senior jubilado anziani
ticket tickets billet fahrkarte karte biglietto billete entrada kaartje bilhete
room zimmer chambre habitacion camera kamer quarto
night nights nacht nachte nuit nuits noche noches notte notti nacht
entry enter entered entrance einfahrt eingang entree entrada ingresso entrata ingang
exit leave left ausfahrt ausgang sortie salida uscita uitgang saida
start starts begin beginn debut inizio comienzo aanvang inicio
end ends ende fin fine einde
duration dauer duree duracion durata duur
plate licence license kennzeichen immatriculation matricula targa kenteken
service bedienung servizio servicio
tip trinkgeld pourboire propina mancia fooi gorjeta
tax vat mwst ust tva iva btw
consumption consumed verbrauch consommation consumo verbruik consumida
charged charge abbuchung prelevement cargo addebito afschrijving debito
open opening opens offen geoffnet ouvert ouverture abierto apertura aperto geopend aberto
hours horaires horaire offnungszeiten horario horarios orari orario openingstijden
closed closes close geschlossen ferme cerrado chiuso gesloten fechado
daily taglich quotidien diario giornaliero dagelijks
weekday weekdays werktags werktag semaine laborables feriali werkdagen
monday montag lundi lunes lunedi maandag segunda
tuesday dienstag mardi martes martedi dinsdag terca
wednesday mittwoch mercredi miercoles mercoledi woensdag quarta
thursday donnerstag jeudi jueves giovedi donderdag quinta
friday freitag vendredi viernes venerdi vrijdag sexta
saturday samstag sonnabend samedi sabado sabato zaterdag
sunday sonntag dimanche domingo domenica zondag
holiday holidays feiertag feiertage ferie festivo festivi feestdag feriado
platform gleis voie quai anden binario spoor plataforma
departure departures abfahrt depart departs salida partenza vertrek partida
arrival arrivals ankunft arrivee llegada arrivo aankomst chegada
week woche semaine semana settimana
month monthly monat monatlich mois mensuel mes mensual mese mensile maand
year yearly annual jahr jahrlich annee annuel ano anual anno annuale jaar
name namen nom nombre nome naam
address adresse direccion indirizzo adres endereco
phone telephone telefon tel telefono telefoon
reference ref referenz referencia riferimento referentie
order bestellung commande pedido ordine bestelling
quantity qty menge anzahl quantite cantidad quantita aantal
unit einzelpreis unitaire unitario
discount rabatt remise descuento sconto korting desconto skonto
deposit pfand caution deposito statiegeld
breakfast fruhstuck petit desayuno colazione ontbijt
until till bis jusqu jusqua hasta fino tot ate
beer bier biere cerveza birra cerveja
wine wein vin vino vinho wijn
water wasser eau agua acqua
coffee kaffee cafe caffe koffie
tea tee thee cha
milk milch lait leche latte melk leite
bread brot pain pan pane brood pao
cake kuchen gateau tarta torta taart bolo
draught draft tap zapf pression barril spina
balance saldo restbetrag solde resto
reference ref referenz referencia riferimento referentie verwendungszweck
bike bicycle fahrrad velo bicicleta bicicletta fiets
dog hund chien perro cane hond
""".strip().splitlines()]


def _lexicon() -> list[set[str]]:
    """The vocabulary of everyday papers (tools/data/lexicon.txt): a line a thing, its words
    in English, German, French, Spanish, Italian, Portuguese and Dutch, some in Polish,
    Swedish, Danish, Turkish and Czech."""
    path = Path(__file__).with_name("data") / "lexicon.txt"
    return [set(_fold(line).split()) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


GLOSSARY += _lexicon()
GLOSSED = frozenset(w for group in GLOSSARY for w in group)
NUMBER_WORDS = {w: n for n, ws in enumerate([
    "", "a an one un une uno una ein eine einen eins um uma een single",
    "two deux zwei dos due dois twee pair couple",
    "three trois drei tres tre três drie", "four quatre vier cuatro quattro quatro",
    "five cinq fünf cinco cinque vijf", "six sechs seis sei zes",
    "seven sept sieben siete sette sete zeven", "eight huit acht ocho otto oito",
    "nine neuf neun nueve nove negen", "ten dix zehn diez dieci dez tien"])
    for w in ws.split()} | {"dozen": 12, "twelve": 12, "eleven": 11, "twenty": 20,
                            "fifty": 50, "hundred": 100}


@dataclass
class Entry:
    """One thing a page says: a label and its values, in a row (and column) of a page."""
    row: Row
    label: str
    cells: list[Cell]
    header: str = ""  # the column, in a table
    section: str = ""  # the heading above it ("DESSERTS")
    details: list[Cell] = field(default_factory=list)  # a line below that belongs ("6 x 0,45")
    under: Row | None = None  # the line below a label alone on its line ("Vehicle reg.")
    note: str = ""  # a line of words under it that says what it is ("tomato, basil")

    @property
    def said(self) -> str:
        """Its row's text, and the line below when it is a label alone on its line: where a
        code or a name it gives is written."""
        return f"{self.row.text}  {self.under.text}" if self.under else self.row.text

    @property
    def values(self) -> list[V.Value]:
        return [v for c in self.cells for v in c.values]

    @property
    def quantity(self) -> tuple[int, V.Value | None] | None:
        """(how many, the price of one, if written) when the entry says "6 x 0,45" or
        "3 x YOGUR"."""
        for c in [*self.cells, *self.details, *self.row.cells]:
            # "2 x 0,89", and with a unit: "2 Stk x 0,89", "3 pcs. x 1.20"
            m = re.search(r"(?<![\d.,])(\d{1,4})\s*(?:[^\W\d_]{1,3}\.?\s+)?[xX×*]\s*",
                          c.text)
            if m:
                after = [v for v in c.values if v.start >= m.end() - 1 and v.kind == "amount"]
                return int(m.group(1)), after[0] if after else None
        return None

    @property
    def box(self) -> list[int]:
        boxes = [c.box for c in self.cells] or [c.box for c in self.row.cells]
        return [min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes)]

    @property
    def name(self) -> str:
        if self.header and self.label == self.header:
            return self.header
        return ", ".join(x for x in (self.label, self.header) if x) or self.section or \
            self.row.text


@dataclass
class Found:
    """An answer read off a document."""
    text: str  # the sentence for the user
    entries: list[Entry] = field(default_factory=list)  # where it was read
    values: list[str] = field(default_factory=list)  # the values it gives, as written
    kind: str = "value"  # value, row, total, change, split, difference, days, yesno, page

    def data(self) -> dict:
        return {"answer": self.text, "kind": self.kind, "values": self.values,
                "cited": [{"page": e.row.page, "row": e.row.number, "text": e.row.text,
                           "box": e.box} for e in self.entries]}


def entries(layout: Layout) -> list[Entry]:
    """Every entry of the layout: a row's label with its values (one per column in a table),
    a row of values alone under the heading above it, and a line like "6 x 0,45" below an
    item kept with that item."""
    out: list[Entry] = []
    section = ""
    headings: list[Cell] = []  # side by side on a page of columns ("ENTRÉES  DESSERTS")
    rows = layout.rows
    # "Pfand" over "6 x 0,25  1,50": one item, named above its amounts
    named = [False] + [_names_item_below(a, b) for a, b in zip(rows, rows[1:], strict=False)]
    for i, row in enumerate(rows):
        if named[i]:
            out.append(Entry(row, rows[i - 1].text, row.cells, "", section))
            continue
        if i + 1 < len(rows) and named[i + 1]:
            continue  # an item's name: its entry comes with the line below
        pairs = row.pairs()
        if i and _describes(rows[i - 1], row):
            for e in out:
                if e.row is rows[i - 1]:
                    e.note = row.text  # "Margherita 12.99" over "tomato, basil"
        elif not row.values and len(row.cells) == 1 and len(words(row.text)) <= 5:
            section = row.text  # a heading, or a note ("Sundays: closed"): both an entry
            headings = []
        elif not row.values and len(row.cells) > 1 and (
                all(len(words(c.text)) <= 3 and c.text.upper() == c.text for c in row.cells) or
                i + 1 < len(rows) and heads_columns(row.cells, rows[i + 1])):
            headings = list(row.cells)  # headings over columns of items
        last = out[-1] if out else None
        if row.values and (not row.label or QUANTITY_LINE.match(row.text) and
                           len(row.label) <= 4) and last is not None and \
                last.row.page == row.page and last.row.number == row.number - 1 and \
                last.values and re.search(QUANTITY, row.text):
            last.details += row.cells  # "Brötchen 2,70" over "6 x 0,45" or "6 Stk x 0,45"
            continue
        if not row.values and len(row.cells) == 1 and len(words(row.text)) <= 4 and \
                i + 1 < len(rows) and rows[i + 1].page == row.page and \
                len(rows[i + 1].cells) == 1 and len(rows[i + 1].text.split()) <= 4:
            out.append(Entry(row, row.text, [], "", section, under=rows[i + 1]))
            continue  # a form's label over its value ("Vehicle reg." over "GK18 TRV")
        for label, cells in pairs or [(row.text, [])]:
            header = next((c.header for c in cells if c.header), "")
            if headings and cells:
                x = cells[0].x
                over = [h for h in headings if h.x - 20 <= x] or headings[:1]
                section = over[-1].text  # the heading of the column it stands in
            if header and len(cells) > 1:  # a row of a table: one entry per column
                for c in cells:
                    out.append(Entry(row, label, [c], c.header, section))
            else:
                out.append(Entry(row, label, cells, header, section))
        out += _word_cells(row, section)
    return out


def _describes(item: Row, row: Row) -> bool:
    """Whether `row` is a line of words under the item of `item` that says what it is (a
    menu's "tomato, mozzarella, basil"), not a heading over the items below: no values, and
    it goes on in small letters or lists things."""
    text = row.text.strip()
    return (not row.values and len(row.cells) == 1 and item.page == row.page and
            bool(item.values) and bool(item.label) and bool(text) and
            (text[0].islower() or "," in text))


def _word_cells(row: Row, section: str) -> list[Entry]:
    """A table row's cells of words under a column other than the first ("Room" over
    "Language Lab"), each an entry named by the row's first words: the item it is said of."""
    worded = [c for c in row.cells if not c.values and c.label]
    if len(worded) < 2 or not any(c.header for c in row.cells if c.values):
        return []
    item = worded[0].label
    return [Entry(row, item, [c], c.header, section) for c in worded[1:] if c.header]


QUANTITY = r"\d[\d.,]*\s*(?:[^\W\d_]{1,3}\.?\s+)?[xX×*]\s*\d"  # "6 x 0,45", "2 Stk x 0,89"
QUANTITY_LINE = re.compile(rf"^\s*{QUANTITY}")


def _names_item_below(above: Row, row: Row) -> bool:
    """Whether `above` is an item's name alone on its line and `row` its quantity and amount
    ("Bananen" over "1,245 kg x 1,69 EUR/kg  2,10"), as receipts print an item bought by
    weight or by the piece."""
    return (not above.values and len(above.cells) == 1 and above.page == row.page and
            row.number == above.number + 1 and bool(row.values) and
            bool(QUANTITY_LINE.match(row.text)) and len(words(row.label)) <= 3)


def _similar(a: str, b: str) -> bool:
    """Whether the question's word `a` is the document's word `b`, OCR slips, plurals and
    abbreviations aside."""
    if a == b:
        return True
    if len(b) >= 3 and len(a) >= len(b) + 2 and a.startswith(b):
        return True  # the document abbreviates: "Sat" for "saturday"
    short, long_ = sorted((a, b), key=len)
    if len(short) >= 4 and long_.startswith(short) and len(long_) - len(short) <= 3:
        return True  # "croissant" and "croissants", "adult" and "adulte"
    stem = len(_common(a, b))
    if stem >= 5 and len(a) - stem <= 3 and len(b) - stem <= 3:
        return True  # one stem, another language's ending: "bananas", "Bananen", "banane"
    allowed = 1 if len(short) < 8 else 2  # "capucino" is a cappuccino
    return len(short) >= 5 and abs(len(a) - len(b)) <= allowed and _edits(a, b) <= allowed


def _inflected(a: str, b: str) -> bool:
    """The same word but for an ending ("night", "nights"): the glossary's test."""
    short, long_ = sorted((a, b), key=len)
    return a == b or len(short) >= 3 and long_.startswith(short) and \
        len(long_) - len(short) <= (2 if len(short) >= 4 else 1)  # "tot" is not "total"


def _common(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _edits(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# Words that say how a sentence goes together, not what it is about: they weigh little in a
# match (a document has them too: "The total is", "Le prix de").
GRAMMAR = frozenset("""
the an is are was were be been of to in on at for by with from and or this that it its do
does did what which who when where how much many can could will would there here my your i
we you me us our they their have has had any some per all get got one two
le la les un une des de du et est au aux en ce qui que pour par sur avec dans
der die das ein eine einen und ist im am zum zur von mit fur auf den dem des
el los las una y es del con por para al lo
il lo gli uno di da con per sul nel della
het een van op voor met
""".split())


# Opposites a yes-or-no question meets: "open on Mondays?" is answered by "Lundi fermé".
OPPOSITES = [({"open", "opening", "opens", "offen", "ouvert", "abierto", "aperto", "geopend",
               "aberto"},
              {"closed", "geschlossen", "ferme", "fermee", "cerrado", "chiuso", "gesloten",
               "fechado"}),
             ({"included", "inclusive", "inbegriffen", "inclus", "incluido", "incluso",
               "inbegrepen"},
              {"excluded", "exclusive", "extra", "exclu", "excluido", "escluso"}),
             (PAID := {"pay", "paid", "paying", "charge", "charged", "cost", "costs", "fee",
                       "fees"},
              FREE := {"free", "gratis", "gratuit", "gratuite", "kostenlos", "gratuito",
                       "gratuita", "gratuitement"}),
             ({"cash", "bar", "contanti", "efectivo", "especes", "contant", "dinheiro"},
              {"card", "karte", "carte", "tarjeta", "carta", "kaart", "cartao", "pin"})]
ALTERNATIVE = {"or", "oder", "ou", "o", "of", "oppure"}
# One way only: a weekday is Monday, but Monday is not Friday.
IMPLIES = {
    "pay": "due fallig echeance vencimiento scadenza vervaldatum",
    "weekday": "monday friday mon fri mo fr lundi vendredi montag freitag lunes viernes "
               "lunedi venerdi maandag vrijdag werktags semaine",
    "weekend": "saturday sunday samedi dimanche samstag sonntag sabado domingo sabato "
               "domenica zaterdag zondag",
}


def _synonyms(word: str) -> set[str]:
    out = {w for group in GLOSSARY if any(_inflected(word, g) for g in group) for w in group}
    for key, implied in IMPLIES.items():
        if _inflected(word, key):
            out |= set(implied.split())
    for one, other in OPPOSITES:
        if any(_inflected(word, w) for w in one):
            out |= other
        elif any(_inflected(word, w) for w in other):
            out |= one
    return out


def wants(question: str) -> set[str]:
    """The kinds of value the question asks for: money, time, span, date, count, weight,
    person, code."""
    out = {kind for kind, cue in WANTS.items() if cue.search(question)}
    if re.search(r"how many (?:minutes|hours|days)|how long", question, re.I):
        out -= {"count", "money", "time"}  # a span of time, not a count of things
    if re.search(r"\bwhat time\b|\bat what time\b", question, re.I):
        out.discard("date")
    if "count" in out:
        out.discard("money")  # "how many coffees for 10 euros" asks a count
    if "code" in out and out - {"code"} and not re.search(r"reference|\bref\b|code\b",
                                                           question, re.I):
        out.discard("code")  # "the number of nights" is a count, "order total" money
    if re.search(r"how many (?:minutes|hours)|how long", question, re.I):
        return {"span"}
    if TOTAL.search(question) and not WHEN.search(question) and "count" not in out:
        out = (out - {"date", "time"}) | {"money"}  # "what is the total due?"
    if WHEN.search(question):
        out.discard("money")  # "on what date will the amount be charged?"
    elif re.search(r"\bhow much\b", question, re.I):
        out -= {"time", "date"}  # "how much is due?"
    return out


def has(e: Entry, kinds: set[str]) -> bool:
    for v in e.values:
        if "money" in kinds and v.kind == "amount" and v.money or \
                "time" in kinds and v.kind == "time" or \
                "span" in kinds and v.kind == "duration" or \
                "date" in kinds and v.kind == "date" or \
                "count" in kinds and v.kind in ("amount", "duration") and not v.money:
            return True
    if "span" in kinds and sum(v.kind == "time" for v in e.values) == 2:
        return True  # "10am - 2pm": how long it is open
    if "code" in kinds and V.CODE.search(e.said):
        return True
    if "person" in kinds and V.PERSON.search(e.said):
        return True
    if "weight" in kinds and _mass(e):
        return True
    return "count" in kinds and e.quantity is not None


def mentioned(question: str, texts: list[str]) -> list[str]:
    """The question's words of four letters or more, grammar words aside, that stand in
    `texts` (a page's lines) as the lookups match them: with OCR's slips, endings, the
    glossary's synonyms and stems inside glued words. Whatever the language: the words are
    the page's own."""
    vocabulary = {w for t in texts for w in words(t)}
    matcher = Matcher([])
    return [w for w in dict.fromkeys(words(question))
            if len(w) >= 4 and w not in GRAMMAR and matcher.match(w, vocabulary)]


class Matcher:
    """Scores entries against a question's words, by the document's own vocabulary."""

    def __init__(self, all_entries: list[Entry]):
        self.entries = all_entries
        self.own = [set(words(f"{e.label} {e.header}")) for e in all_entries]
        self.context = [set(words(f"{e.section} {e.row.text} {e.note}")) for e in all_entries]
        rows: dict[int, set[str]] = {}
        for e, own in zip(all_entries, self.own, strict=True):
            rows.setdefault(id(e.row), set()).update(own | set(words(e.row.text)))
        self.rows = len(rows) or 1
        self.df: dict[str, int] = {}
        for vocabulary in rows.values():
            for w in vocabulary:
                self.df[w] = self.df.get(w, 0) + 1
        self.vocabulary = set(self.df)
        self._forms: dict[str, set[str]] = {}
        self.days = [_days_of(e) for e in all_entries]
        self.spans, self.season = _spans_of(all_entries)

    def weight(self, word: str) -> float:
        rare = math.log(1 + self.rows / self.df.get(word, 1)) * min(len(word), 5) / 5
        return rare * (0.1 if word in GRAMMAR else 1.0)

    def forms(self, word: str) -> set[str]:
        """The word and its glossary synonyms that the document has."""
        if word not in self._forms:
            self._forms[word] = {word} if word in GRAMMAR else \
                {word} | {w for w in _synonyms(word) if w != word}
        return self._forms[word]

    def match(self, question_word: str, vocabulary: set[str]) -> tuple[str, float] | None:
        for w in vocabulary:
            if _similar(question_word, w):
                return w, 1.0
        for form in self.forms(question_word) - {question_word}:
            for w in vocabulary:
                if _similar(form, w) and (len(w) >= 4 or w == form):  # "pak" is no "pakbon"
                    return w, 0.9
        # OCR glues words ("ACEITEOLIVAVIRGEN"), some languages compound them
        # ("Geburtsdatum"): the stem inside a long word
        if question_word in GRAMMAR:
            return None
        for form in sorted(self.forms(question_word), key=lambda f: f != question_word):
            stem = form[:max(4, len(form) - 1)]
            if len(form) >= 4:
                for w in vocabulary:
                    if len(w) >= 10 and stem in w:
                        return w, 0.7
        return None

    def _negated(self, said: list[str]) -> list[str]:
        """"if I'm not a member", "not a student": the page's "Non-member", "non-student"."""
        out: list[str] = []
        negated = False
        for w in said:
            if w in NEGATIONS:
                negated = True
                continue
            if negated and w in ARTICLES:
                continue
            out.append(f"non{w}" if negated and f"non{w}" in self.vocabulary else w)
            negated = False
        return out if any(w.startswith("non") and w in self.vocabulary for w in out) else said

    def known(self, question: str) -> list[str]:
        """The question's words that the document has (itself or by a synonym), and pairs
        of them that OCR wrote as one ("flat white": "Flatwhite")."""
        said = words(question)
        said = self._negated(said)
        pairs = [a + b for a, b in zip(said, said[1:], strict=False)
                 if a not in GRAMMAR and b not in GRAMMAR and
                 (a + b in self.vocabulary or a + b in GLOSSED)]  # "delivery note": Pakbon
        parts = {w for p in pairs if p not in self.vocabulary for w in said
                 if p.startswith(w) or p.endswith(w)}  # a thing of two words, not each
        said = [w for w in said if w not in parts]
        return [w for w in dict.fromkeys(said + pairs) if self.match(w, self.vocabulary)]

    def scores(self, question_words: list[str], question: str = "",
               kinds: set[str] = frozenset()) -> list[tuple[float, set[str], Entry]]:
        """(score, the question's words it matched, entry), best first. A plain number of
        the question breaks ties between rows ("night 12"), unless it asks yes or no (the
        42 of "does route 42 run on Sundays?" names the timetable, not a row)."""
        found = V.asked(question)
        yes_no = bool(YES_NO.search(question))
        day = days.asked(question)
        # "open at 8pm on friday?": the day finds the row, the time is what is asked of it
        asked = [v for v in found if v.kind == "date" or v.kind == "amount" and v.money or
                 v.kind == "time" and not (yes_no and day)]
        counts = set() if yes_no else \
            {v.number for v in found if v.kind == "amount" and not v.money}
        if day:  # a day's name is met by the days each entry holds for, not by its letters
            question_words = [q for q in question_words if days.asked(q) is None]
            holding = {id(e.row) for e, held in zip(self.entries, self.days, strict=True)
                       if held is not None and day <= held}
            day_weight = math.log(1 + self.rows / max(1, len(holding)))
        on = [v.day for v in found if v.kind == "date"]
        # "the reg on the ticket": asked for a code or a name, a word for the paper itself
        # counts little beside a word for what is on it
        paper = {q for q in question_words if q in PAPER} if kinds & {"code", "person"} else set()
        if not any(q not in GRAMMAR and q not in paper for q in question_words):
            paper = set()
        out = []
        for e, own, context, holds in zip(self.entries, self.own, self.context, self.days,
                                          strict=True):
            score, hit, named = 0.0, set(), set()
            for q in question_words:
                if (m := self.match(q, own)) is not None:
                    score += self.weight(m[0]) * m[1] * (0.3 if q in paper else 1.0)
                    hit.add(q)
                    named.add(m[0])
                elif (m := self.match(q, context)) is not None:
                    score += 0.5 * self.weight(m[0]) * m[1] * (0.3 if q in paper else 1.0)
                    hit.add(q)
            if named:  # of two labels the words name alike, the one they name whole
                score *= 1 + 0.2 * len(named) / len(own - GRAMMAR or own)
            # a value the question gives locates its row ("which train leaves at 10:12?"),
            # a plain number its row or section ("night 12", "section 7", "platform 5")
            if any(_same(a, v) for a in asked for v in e.values):
                score += 2.0
                hit.add("#value")
            elif counts and (counts & {v.number for v in e.values if v.kind == "amount"} or
                             counts & _numbers_in(e.section)):
                score += 0.6  # a tie-breaker among rows the words found alike
                hit.add("#number")
            if day and holds is not None and day & holds:
                # the days a column or a line holds for ("Zaterdag", "Mon-Sat", "Daily"),
                # weighed as a word is, by how few rows hold for the day
                score += day_weight if day <= holds else day_weight / 2
                hit.add("#day")
            if score and kinds:
                score *= 1.6 if has(e, kinds) else 0.6
            if day and holds is not None and not day & holds and not yes_no:
                score *= 0.25  # another day's times
            if on and any(V.within(on[0], span) for span in self.spans[id(e)]):
                score += 2.0  # the date asked falls in the span it holds for
                hit.add("#span")
            elif not on and id(e) in self.season:
                score *= 0.6  # a season's hours ("School holidays: ...") unless asked
            if score:
                out.append((score, hit, e))
        if any("#span" in hit for _, hit, _ in out):
            # the season the date falls in stands in for the usual hours that day
            out = [(score * (0.6 if not self.spans[id(e)] else 1.0), hit, e)
                   for score, hit, e in out]
        out.sort(key=lambda s: (-s[0], s[2].row.page, s[2].row.number))
        return out


def _days_of(e: Entry) -> frozenset[int] | None:
    """The days an entry holds for: named by its column, its own label, a cell of days
    beside its values in the row ("07:10  Mon-Sat  08:05  Mon-Sat"), or its heading."""
    if e.header and (held := days.covered(e.header)) is not None:
        return held
    cells = e.row.cells
    if e.cells and e.cells[-1] in cells:
        after = cells.index(e.cells[-1]) + 1
        if after < len(cells) and not cells[after].values and \
                (held := days.covered(cells[after].text)) is not None:
            return held
    if e.label and (held := days.covered(e.label)) is not None:
        return held
    return days.covered(e.section) if e.section else None


def _spans_of(all_entries: list[Entry]) -> tuple[dict[int, list], set[int]]:
    """The spans of dates each entry holds for (by id): in its own line, its heading, or a
    line above that introduces it ("School holidays (20 July - 28 August):"); and the ids of
    those that hold for a season given elsewhere than in their own line."""
    rows = {(e.row.page, e.row.number): e.row for e in all_entries}
    ranges: dict[str, list] = {}

    def of(text: str) -> list:
        if text not in ranges:
            ranges[text] = V.date_ranges(text) if text else []
        return ranges[text]

    spans, season = {}, set()
    for e in all_entries:
        above = rows.get((e.row.page, e.row.number - 1))
        given = of(e.section)
        if above is not None and above.text.rstrip().endswith(":"):
            given = given + of(above.text)
        spans[id(e)] = of(e.row.text) + given
        if given and not of(e.row.text):
            season.add(id(e))
    return spans, season


def _numbers_in(text: str) -> set:
    return {v.number for v in V.find(text) if v.kind == "amount" and not v.money}


def _same(a: V.Value, b: V.Value) -> bool:
    if a.kind in ("time", "duration") or b.kind in ("time", "duration"):
        return a.kind == b.kind and a.minutes == b.minutes
    if a.kind == "date":
        return b.kind == "date" and a.day == b.day
    return a.kind == b.kind and a.number == b.number


def _quantities(question: str, items: list[str]) -> dict[str, int]:
    """How many of each item word the question asks for: "two croissants and an espresso"."""
    tokens = re.findall(r"\d+|[^\W\d_]+", _fold(question))
    out = {}
    for i, t in enumerate(tokens):
        if not any(_similar(t, item) for item in items):
            continue
        for back in (1, 2):
            if i - back < 0 or back == 2 and len(tokens[i - 1]) < 4:
                break  # "two large coffees", not "the 9 to Siegen"
            before = tokens[i - back]
            if before.isdigit() and int(before) < 100:
                out[t] = int(before)
                break
            if before in NUMBER_WORDS:
                out[t] = NUMBER_WORDS[before]
                break
    return out


def _money_value(e: Entry) -> V.Value | None:
    """The amount an entry gives: its last price, else its quantity line's ("Suero 30" over
    "2 x 4,95  9,90": 9,90)."""
    for values in (e.values, [v for c in e.details for v in c.values]):
        money = [v for v in values if v.kind == "amount" and v.money]
        if money:
            return money[-1]
    return None


# a size in an item's name ("250g", "6x1,5L", "75 cl"): said only when it is what was asked
MEASURE = re.compile(r"(?<![\w.,])(?:\d+\s?[xX×]\s?)?\d[\d.,]*\s?(?:kg|g|gr|ml|cl|l|lb|oz|cm|mm)"
                     r"(?![^\W\d_])|(?<![\w.,])\d+(?:[.,]\d+)?\s?(?:\"|”|''|inch\b|in\b)", re.I)


def _where(e: Entry, pages: int) -> str:
    return f" (page {e.row.page})" if pages > 1 else ""


def _sentence(e: Entry, shown: list[V.Value | str], pages: int) -> str:
    where = _where(e, pages)
    if not shown:
        return f'It says "{e.row.text}"{where}.'
    said = ', '.join(v if isinstance(v, str) else v.text for v in shown)
    name = e.name
    if not MEASURE.search(said):  # "Butter: 2,29", not "Butter 250g: 2,29": one value said
        name = re.sub(r"\s+", " ", MEASURE.sub(" ", name)).strip(" ,") or name
    return f"{name}: {said}{where}."


def answer(question: str, layout: Layout) -> Found | None:
    """What the document says to `question`, or None when the question's words find nothing
    in it, its values ask for no arithmetic and it asks for no kind of value (then the whole
    reading answers: "what does it say?")."""
    asked = V.asked(question)
    times = [v for v in asked if v.kind == "time"]
    dates = [v for v in asked if v.kind == "date"]
    if len(times) >= 2 and not (TOTAL.search(question) and not MINUTES.search(question)):
        return _gap(times[0], times[1], [], question)
    if len(dates) >= 2:
        days = abs((dates[1].day - dates[0].day).days)
        return Found(f"From {dates[0].text} to {dates[1].text} is {days} days.", [],
                     [f"{days} days"], "days")
    found = entries(layout)
    matcher = Matcher(found)
    known = matcher.known(question)
    pages = len(layout.pages)
    if len(times) == 1 and not YES_NO.search(question) and \
            (done := _journey(question, layout, times[0], matcher, known, pages)):
        return done
    if LASTS.search(question) and (done := _supply(found)):
        return done
    if PAGE.search(question):
        known = [w for w in known if not re.fullmatch(r"pages?|seite|pagina|paginas", w)]
        scored = matcher.scores(known, question)
        if scored:
            best = scored[0][2]
            said = " ".join(w for w in (best.row.label or best.row.text).split()
                            if not re.search(r"\d", w))  # the heading, not its figures
            return Found(f'On page {best.row.page}: "{said}".', [best],
                         [f"page {best.row.page}"], "page")
    kinds = set() if YES_NO.search(question) else wants(question)
    scored = matcher.scores(known, question, kinds)
    if MINUTES.search(question) and not YES_NO.search(question) and \
            (done := _minutes(question, scored, times)):
        return done
    if DAYS.search(question) and (HOW_MANY.search(question) or MINUTES.search(question)) \
            and not dates and (done := _days_between(scored)):
        return done
    if LEFT.search(question) and not YES_NO.search(question) and \
            (done := _left(matcher.scores(known, question), pages)):
        return done
    numbers = [v for v in asked if v.kind == "amount"]
    if kinds and "money" not in kinds:
        pass  # a time, a span, a date or a count: no sum of prices
    elif (CHANGE.search(question) or SPLIT.search(question) or TOTAL.search(question) or
            WITHOUT.search(question) or any(n > 1 for n in _quantities(question, known).values())
            or
            AND.search(question) and _items(scored, len(known)) > 1) and \
            not HOW_MANY.search(question) and not YES_NO.search(question):
        done = _arithmetic(question, found, known, scored, numbers)
        if done is not None:
            return done
    if not scored and (LEAST.search(question) or MOST.search(question)):
        scored = [(1.0, set(), e) for e in found if _money_value(e) is not None]
    if not scored and kinds - {"count"}:
        # a kind of value asked for and no word found: "how much did I spend?" the total,
        # else the only one there is, else nothing
        only = [e for e in found if has(e, kinds)]
        named = [e for e in found if TOTAL_ROW.search(e.label) and _money_value(e)]
        if "money" in kinds and named and not LEAST.search(question) and \
                not MOST.search(question):
            total = _document_total(found)
            v = _money_value(total)
            return Found(f"{total.label}: {v.text}.", [total], [v.text], "total")
        if len({id(e.row) for e in only}) == 1:
            scored = [(1.0, set(), only[0])]
        else:
            return Found("I could not find that in it.", [], [], "none")
    if not scored and not READ_ALL.search(question) and \
            any(w not in GRAMMAR for w in words(question)):
        return Found("I could not find that in it.", [], [], "none")
    if not scored:
        return None
    if YES_NO.search(question):
        return _yes_no(question, scored)
    if EARLY.search(question) and (done := _arrive_early(scored, found, pages)):
        return done
    if (not kinds or "money" in kinds) and (done := _discounted(scored, pages)):
        return done
    return _value(question, scored, pages, times, kinds, found)


def _journey(question: str, layout: Layout, start: V.Value, matcher: Matcher,
             known: list[str], pages: int) -> Found | None:
    """The time a departure the question gives reaches the stop it names, on a grid of stops
    and departures (tools/trips.py); how long it takes when asked how long."""
    def named(row: Row) -> float:
        label = set(words(row.label))
        return sum(matcher.weight(m[0]) * m[1] for q in known
                   if (m := matcher.match(q, label)) is not None)

    journey = trips.leg(layout, start, named)
    if journey is None:
        return None
    origin, stop = (" ".join(w for w in r.label.split() if not re.search(r"\d", w))
                    for r in (journey.origin, journey.stop))
    where = f" (page {journey.stop.page})" if pages > 1 else ""
    said = f"The {journey.start.text} from {origin} reaches {stop} at {journey.end.text}"
    cited = [e for e in matcher.entries if e.row in (journey.origin, journey.stop)][:2]
    if MINUTES.search(question) and not WHEN.search(question):
        took = V.minutes_text(journey.minutes)
        return Found(f"{said}: {took}{where}.", cited, [took], "difference")
    return Found(f"{said}{where}.", cited, [journey.end.text], "value")


DISCOUNT = set(next(g for g in GLOSSARY if "discount" in g)) | {
    "reduction", "reduc", "reduced", "off", "ermassigung", "ermassigt", "reducao", "riduzione",
    "ridotto", "reducido", "reduit", "reduzido", "promo", "promotion", "promocion"}


def _cut(e: Entry) -> V.Value | None:
    """The percent a line takes off ("-10 %", "10 % discount"), or None."""
    for c in e.row.cells:
        for v in c.values:
            if v.kind == "percent" and (v.text.startswith("-") or
                                        c.text[:v.start].rstrip().endswith(("-", "–", "−")) or
                                        set(words(e.row.text)) & DISCOUNT):
                return v
    return None


def _discounted(scored, pages: int) -> Found | None:
    """A price with the reduction the question qualifies for: "I'm a student, a men's cut on
    Tuesday?" on "Coupe 22" and "Le mardi : -10 % pour les étudiants" is 22 less 10 %. The
    reduction's line must match words of the question that the price's line does not (who
    or when it is for), so a line of discounts no one asked about changes nothing."""
    best = scored[0][0]
    priced = [(hit, e) for score, hit, e in scored
              if score >= best * 0.4 and _money_value(e) is not None and _cut(e) is None]
    cuts = [(hit, e, v) for score, hit, e in scored
            if score >= best * 0.25 and (v := _cut(e)) is not None]
    if not priced or not cuts:
        return None
    hit, item = priced[0]
    for why, line, cut in cuts:
        own = {w for w in why - hit if not w.startswith("#") and w not in GRAMMAR and
               w not in PAID}  # "charge" asks a price; it says not who or when
        if own or "#day" in why and "#day" not in hit:
            price = _money_value(item)
            off = abs(cut.number)
            after = (price.number * (100 - off) / 100).quantize(Decimal("0.01"))
            said = V.money(after, price)
            where = f" (page {item.row.page})" if pages > 1 else ""
            return Found(f"{item.name}: {price.text} less {off}% is {said}{where}.",
                         [item, line], [said], "total")
    return None


def _gap(a: V.Value, b: V.Value, cited: list[Entry], question: str = "") -> Found:
    gap = b.minutes - a.minutes
    gap += 24 * 60 if gap < 0 else 0
    said = f"{gap} minutes" if re.search(r"minut", question, re.I) else V.minutes_text(gap)
    return Found(f"From {a.text} to {b.text} is {said}.", cited, [said], "difference")


def _minutes(question: str, scored, times: list[V.Value]) -> Found | None:
    """How long: a span the page gives ("Durée 2h35min"), the gap from a time the question
    gives to the next one after it, or between the times of two entries it names."""
    if not scored:
        return None
    best = scored[0][0]
    good = [(hit, e) for score, hit, e in scored if score >= best * 0.5]
    spans = [(v, e) for _, e in good[:3] for v in e.values if v.kind == "duration"]
    if spans and not times and (HOW_MANY.search(question) or
                                re.search("how long", question, re.I)):
        v, e = spans[0]
        said = f"{v.minutes} minutes" if re.search(r"minut", question, re.I) else \
            V.minutes_text(v.minutes)
        return Found(f"{e.name}: {v.text} ({said}).", [e], [said], "difference")
    column = scored[0][2].header  # the times of the column the best stands in, too
    same = [e for _, _, e in scored if column and e.header == column]
    picked = [e for _, e in good]
    picked += [e for e in same if all(e is not p for p in picked)]
    timed = [(v, e) for e in picked for v in e.values if v.kind == "time"]
    if len(times) == 1 and AFTER.search(question) and timed:
        later = sorted((p for p in timed if p[0].minutes > times[0].minutes),
                       key=lambda p: p[0].minutes)
        if later:
            return _gap(times[0], later[0][0], [later[0][1]], question)
    if not times:
        picked, covered = [], set()
        for hit, e in good:
            # its own time, else its row's: a table's train named in one column, its time
            # in another
            first = next((v for v in e.values if v.kind == "time"), None) or \
                next((v for v in e.row.values if v.kind == "time"), None)
            if first is not None and hit - covered and all(p[1].row is not e.row
                                                           for p in picked):
                picked.append((first, e))
                covered |= hit
        if len(picked) == 1 and not YES_NO.search(question):
            # two lines the words find alike ("valid from", "valid until")
            first = picked[0][0]
            picked += _second(picked[0][1], good, lambda e: next(
                (v for v in [*e.values, *e.row.values] if v.kind == "time" and
                 v.minutes != first.minutes), None))
        if len(picked) >= 2:
            (a, ea), (b, eb) = sorted(picked[:2], key=lambda p: p[0].minutes)
            return _gap(a, b, [ea, eb], question)
    return None


TRIP = set().union(*(g for g in GLOSSARY if g & {"duration", "journey", "time", "crossing"}))


# asked when to be there: "what time should I get there for ...", "... need to be at ..."
EARLY = _cue(r"(?:should|need to|have to|must|supposed to|got to|ought to)\s+(?:\w+\s+){0,2}"
             r"(?:be there|get there|be at|be in|arrive|turn up|show up|check in|come)",
             r"latest .{0,20}(?:arrive|get there|turn up|be there)")
AHEAD = _cue(r"before", r"early", r"earlier", r"prior", r"ahead", r"in advance", r"vor\b",
             r"vorher", r"avant", r"[aà] l'avance", r"antes", r"de antelaci[oó]n", r"prima",
             r"in anticipo", r"voor\b", r"eerder", r"van tevoren", r"f[oö]re")


# how long a pack lasts, as a medicine's label gives it: "21 capsules", "Take ONE capsule
# THREE times a day", "2 Tabletten 3 x täglich", "un comprimé deux fois par jour"
LASTS = _cue(r"how many days .{0,40}(?:last|enough|do)", r"how long .{0,40}(?:last|be enough)",
             r"when .{0,30}run out", r"wie lange reicht", r"combien de jours", r"cu[aá]ntos d[ií]as")
DOSE_UNIT = (r"(?:tablets?|capsules?|caps|pills?|caplets?|sachets?|doses?|drops?|puffs?|"
             r"tabletten?|kapseln?|comprim[eé]s?|g[eé]lules?|comprimidos?|c[aá]psulas?|"
             r"compresse|pastillas?|gotas|tropfen)")
PER_DAY = re.compile(r"(?<!\w)(?:(\w+)\s*(?:times|x|mal|fois|veces|volte|keer|vezes)\s*"
                     r"(?:a|per|par|al|pro|am|por|ao)?\s*(?:day|daily|tag|t[aä]glich|jour|"
                     r"d[ií]a|giorno|dag|dia)|(once|twice|thrice)\s+(?:a\s+day|daily)|"
                     r"every\s+(\d+)\s+hours)", re.I)
TIMES_WORDS = {"once": 1, "twice": 2, "thrice": 3}


def _count_word(word: str) -> int | None:
    word = _fold(word)
    return int(word) if word.isdigit() else NUMBER_WORDS.get(word) or TIMES_WORDS.get(word)


def _supply(found: list[Entry]) -> Found | None:
    """How many days a pack lasts: the units it holds over the units taken a day, from the
    page's own numbers; None when it gives no pack size or no daily dose."""
    texts = list(dict.fromkeys(e.row.text for e in found))
    per_day = None
    for text in texts:
        if (m := PER_DAY.search(text)) is None:
            continue
        times = 24 // int(m.group(3)) if m.group(3) else _count_word(m.group(1) or m.group(2))
        dose = re.search(rf"(?<!\w)(\w+)\s+{DOSE_UNIT}(?!\w)", text[:m.start()], re.I)
        each = _count_word(dose.group(1)) if dose else 1
        if times and each:
            per_day, dosing = times * each, text
            break
    packs = [int(m.group(1)) for text in texts
             for m in re.finditer(rf"(?<![\d.,])(\d{{1,4}})\s*(?:x\s*)?{DOSE_UNIT}(?!\w)", text,
                                  re.I)]
    if per_day is None or not packs or max(packs) < per_day:
        return None
    units = max(packs)
    days = Decimal(units) / per_day
    said = f"{days.normalize():f} days"
    return Found(f"{said}: {units} at {per_day} a day (\"{dosing}\").",
                 [e for e in found if e.row.text == dosing][:1], [said], "days")


def _arrive_early(scored, found: list[Entry], pages: int) -> Found | None:
    """When to be there: the time of the entry asked about less how early the page asks
    people to come ("Please arrive 10 minutes before your appointment"); None without both."""
    ahead = {v.minutes: v for e in found for c in e.row.cells for v in c.values
             if v.kind == "duration" and AHEAD.search(c.text[v.end:v.end + 16])}
    if len(ahead) != 1:
        return None
    early = next(iter(ahead.values()))
    best = scored[0][0]
    for score, _, e in scored:
        if score < best * 0.8:
            return None
        clock = [v for v in e.values or e.row.values if v.kind == "time"]
        if clock:
            said = V.clock(clock[0].minutes - early.minutes)
            return Found(f"{e.name}: {clock[0].text} - {early.text} = {said}{_where(e, pages)}.",
                         [e], [said], "difference")
    return None


def _travel_time(found: list[Entry]) -> V.Value | None:
    """The one span of time the page gives outside its tables that is not how early to come
    ("arrive 10 minutes before"): how long the journey takes, or None."""
    spans = {v.text: (v, c.text[:v.start]) for e in found for c in e.row.cells
             if not c.header for v in c.values if v.kind == "duration"
             and not BEFORE.search(c.text[v.end:v.end + 12])}
    if len(spans) > 1:  # the one named a journey's time ("Crossing time", "Fahrzeit")
        spans = {t: (v, said) for t, (v, said) in spans.items()
                 if set(words(said)) & TRIP or any(w.endswith(("zeit", "dauer"))
                                                   for w in words(said))}
    return next(iter(spans.values()))[0] if len(spans) == 1 else None


def _left(scored, pages: int) -> Found | None:
    """What is left: of the best entries, one whose row gives two amounts of one unit ("47,3
    Go utilisés sur 80 Go"), or two plain counts under two columns (ordered 6, delivered 4):
    the larger less the smaller."""
    if not scored:
        return None
    best = scored[0][0]
    for score, _, e in scored:
        if score < best * 0.5:
            break
        pairs = []
        for c in e.row.cells:
            for v in c.values:
                if v.kind != "amount" or v.number is None:
                    continue
                after = re.match(r"\s?([^\W\d_]{1,5})\b", c.text[v.end:])
                unit = v.currency or (after.group(1) if after else "")
                alone = c.header and c.text.strip() == v.text and len(v.text) < 5
                if unit or alone:
                    pairs.append((v, unit if unit else "#column"))
        for unit in dict.fromkeys(u for _, u in pairs):
            same = [v for v, u in pairs if u.casefold() == unit.casefold()]
            if len(same) == 2 and same[0].number != same[1].number:
                a, b = sorted(same, key=lambda v: v.number)
                places = max(len(x.digits.replace(",", ".").partition(".")[2]) for x in same)
                rest = f"{b.number - a.number:.{places}f}"
                if "," in a.digits + b.digits and "." not in a.digits + b.digits:
                    rest = rest.replace(".", ",")
                said = f"{rest} {unit}" if unit != "#column" and not b.currency else \
                    V.money(b.number - a.number, b) if b.currency else rest
                return Found(f"{e.name}: {b.text} - {a.text} = {said}{_where(e, pages)}.",
                             [e], [said], "difference")
    return None


def _second(first: Entry, good, value_of) -> list:
    """The entry after `first` among `good` (hits, entry) that the question's words find as
    well, on another row, with its value: [(value, entry)] or []."""
    hits = next(h for h, e in good if e is first)
    for hit, e in good:
        if e.row is not first.row and hit >= hits - {"#value"} and \
                (v := value_of(e)) is not None:
            return [(v, e)]
    return []


def _days_between(scored) -> Found | None:
    """How many days between the dates of the two rows the question names ("from the
    invoice date" to the due date), when it gives no date itself."""
    if not scored:
        return None
    best = scored[0][0]
    good = [(hit, e) for score, hit, e in scored if score >= best * 0.3]

    def date_of(e: Entry) -> V.Value | None:
        return next((v for v in [*e.values, *e.row.values] if v.kind == "date"), None)

    first = next(((v, e) for _, e in good if (v := date_of(e)) is not None), None)
    if first is None:
        return None
    second = next(((v, e) for _, e in good if e.row is not first[1].row and
                   (v := date_of(e)) is not None and v.day != first[0].day), None)
    if second is None:
        return None
    (a, ea), (b, eb) = sorted([first, second], key=lambda p: p[0].day)
    days = (b.day - a.day).days
    return Found(f"From {a.text} to {b.text} is {days} days.", [ea, eb], [f"{days} days"],
                 "days")


def _yes_no(question: str, scored) -> Found:
    """Yes or no, with the line that says so: no when it says no ("Sundays: closed"), or when
    it says the opposite of what the question asks ("pay for a bike?" on "Bicycle free";
    "open on Mondays?" on "Lundi fermé" is no once, not twice)."""
    best = scored[0][0]
    ties = [e for score, _, e in scored if score >= best * 0.999]
    if ties[0].row.number == 1:  # the title names what the page is about, not the answer
        ties = [e for score, _, e in scored if score >= best * 0.8 and e.row.number > 1] or ties
    e = next((e for e in ties if e.values), ties[0])
    said = _sentence_of(e.row.text, next((h for _, h, x in scored if x is e), set()))
    asked = _first_alternative(words(question))
    opposite = _opposites(asked, words(said))
    rest = " ".join(w for w in re.findall(r"\S+", said) if _fold(w).strip(".,:;!") not in
                    opposite)
    no = bool(NEGATIVE.search(rest)) != bool(opposite) or _priced_otherwise(asked, e)
    if not no and (outside := _outside_hours(question, e)) is not None:
        no = outside
    if not no and (day := days.asked(question)) and \
            (held := days.covered(e.said)) is not None and not day & held:
        no = True  # "on wednesday?" of "PE kit needed on Mondays": not that day
    if not no and (met := _threshold_met(question, e)) is not None:
        no = not met
    return Found(f'{"No" if no else "Yes"}: "{said}".', [e], ["no" if no else "yes"], "yesno")


def _sentence_of(text: str, hit: set[str]) -> str:
    """The sentence of a line that holds most of the question's words matched in it ("PE
    kit needed on Mondays." of "PE kit needed on Mondays. Homework club: Tuesdays ..."):
    what answers, without the line's other sentences and their values."""
    parts = [p for p in re.split(r"(?<=[.!?;])\s+(?=[^\W\d_])", text) if p.strip()]
    if len(parts) < 2:
        return text
    def held(part: str) -> int:
        said = words(part)
        return sum(1 for h in hit if any(_similar(h, w) or w in _synonyms(h) for w in said))
    counts = [held(p) for p in parts]
    return parts[counts.index(max(counts))] if max(counts) else text


# a bound before an amount: "orders over $30", "ab 50 €", "moins de 12 ans", "under 5"
ABOVE = re.compile(r"(?<!\w)(?:over|above|more than|from|min(?:imum|\.)?|at least|ab|über|uber|"
                   r"à partir de|a partir de|plus de|más de|mas de|oltre|vanaf|boven|mehr als)"
                   r"\W{0,3}$", re.I)
BELOW = re.compile(r"(?<!\w)(?:under|below|less than|up to|unter|bis|moins de|jusqu'à|"
                   r"menos de|hasta|sotto|fino a|onder|tot|max(?:imum|\.)?)\W{0,3}$", re.I)


def _threshold_met(question: str, e: Entry) -> bool | None:
    """Whether the one amount a question gives ("if my order is $25, is delivery free?")
    meets the bound its line sets ("Free delivery on orders over $30"); None when the line
    sets none."""
    given = [v for v in V.asked(question) if v.kind == "amount"]
    if len(given) != 1:
        return None
    n = given[0].number
    for cell in e.row.cells:
        for v in cell.values:
            if v.kind != "amount" or v.number == n:
                continue
            before = cell.text[:v.start]
            if ABOVE.search(before):
                return n >= v.number
            if BELOW.search(before):
                return n < v.number
    return None


def _outside_hours(question: str, e: Entry) -> bool | None:
    """Whether the one time a question gives ("open at 8pm on friday?") falls outside the
    hours the entry's line gives ("Freitag 9:00 - 18:00"); None when there is no such pair.
    A time without am or pm ("at 1.30") is the afternoon's when only that falls inside."""
    given = [v for v in V.asked(question) if v.kind == "time"]
    hours = [v for v in e.row.values if v.kind == "time"]
    if len(given) != 1 or len(hours) != 2 or BEFORE.search(question) or AFTER.search(question):
        return None
    start, end = hours[0].minutes, hours[1].minutes
    end += 24 * 60 if end <= start else 0  # "18:00 - 02:00": past midnight
    t = given[0].minutes
    said = given[0].text.casefold()
    later = [t] if "m" in said or t >= 12 * 60 else [t, t + 12 * 60]
    return not any(start <= m <= end or start <= m + 24 * 60 <= end for m in later)


def _first_alternative(asked: list[str]) -> list[str]:
    """The words of a question up to its "or" when both sides name opposites ("is it free or
    do they charge?" asks whether it is free)."""
    for cut, w in enumerate(asked):
        if w in ALTERNATIVE and _opposites(asked[:cut], asked[cut + 1:]):
            return asked[:cut]
    return asked


def _priced_otherwise(asked: list[str], e: Entry) -> bool:
    """Whether the entry's amounts answer the question no: a price on what was asked to be
    free ("free?" on "+0,40"), nothing but zero on what was asked to be paid ("paying church
    tax?" on "Kirchensteuer 0,00")."""
    money = [v for v in e.values if v.kind == "amount" and v.money]
    if not money or any(_inflected(w, f) for w in words(e.row.text) for f in FREE):
        return False  # "free on orders over 25,00": the line says free, its amount a bound
    free, paid = (any(_inflected(q, w) for q in asked for w in side) for side in (FREE, PAID))
    zero = all(v.number == 0 for v in money)
    if free and not paid:
        return not zero and not _opposites(asked, words(e.row.text))
    return paid and not free and zero


def _opposites(asked: list[str], said: list[str]) -> set[str]:
    """The words of `said` that mean the opposite of a word of `asked`."""
    out = set()
    for one, other in OPPOSITES:
        for a, b in ((one, other), (other, one)):
            if any(_inflected(q, w) for q in asked for w in a):
                out |= {s for s in said if any(_inflected(s, w) for w in b)}
    return out


def _items(scored, known: int) -> int:
    """How many different priced rows the question names, each by words of its own."""
    seen, rows = set(), set()
    for score, hit, e in scored:
        if _money_value(e) is None or not (hit - seen) or score < scored[0][0] * 0.5:
            continue
        if id(e.row) not in rows:
            rows.add(id(e.row))
            seen |= hit
    return len(rows) if known > 1 else 0


def _value(question, scored, pages, times, kinds, found) -> Found:
    """One entry's value; among entries that match well, the first, last, cheapest or
    dearest, or the first time after one the question gives."""
    best = scored[0][0]
    top = [e for score, _, e in scored if score >= best * 0.999]
    top.sort(key=lambda e: not e.values)  # among equals, one that gives a value
    near = [e for score, _, e in scored if score >= best * 0.4]
    timed = [(v, e) for e in near for v in e.values if v.kind == "time"]
    if timed and (FIRST.search(question) or LAST.search(question) or
                  times and (AFTER.search(question) or BEFORE.search(question))):
        # the entries of the section the question names, not only the best one
        section = [(v, e) for v, e in timed if e.section == top[0].section or e in top]
        timed = section or timed
        # and of the column it names ("Depart Skerra"), when the best are in one
        column = {e.header for e in top if e.values}
        if len(column) == 1 and "" not in column:
            timed = [(v, e) for v, e in timed if e.header in column] or timed
        if times and AFTER.search(question):
            later = [p for p in timed if p[0].minutes >= times[0].minutes]
            v, e = min(later or timed, key=lambda p: p[0].minutes)
        elif times and BEFORE.search(question):
            v, e = max([p for p in timed if p[0].minutes <= times[0].minutes] or timed,
                       key=lambda p: p[0].minutes)
        elif LAST.search(question):
            v, e = max(timed, key=lambda p: p[0].minutes)
        else:
            v, e = min(timed, key=lambda p: p[0].minutes)
        return Found(_sentence(e, [v], pages), [e], [v.text], "value")
    priced = [(v, e) for e in near if (v := _money_value(e)) is not None]
    if len(priced) > 1 and (LEAST.search(question) or MOST.search(question)):
        pick = min if LEAST.search(question) else max
        v, e = pick(priced, key=lambda p: p[0].number)
        return Found(_sentence(e, [v], pages), [e], [v.text], "value")
    named = top[0].header and any(_synonyms(q) & set(words(top[0].header)) or
                                  any(_similar(q, h) for h in words(top[0].header))
                                  for q in words(question) if q not in GRAMMAR)
    if kinds and not named and not any(has(x, kinds) for x in top):
        # the best words lead to no value of the kind asked: the best entry that has one,
        # unless the question names the best one's column ("from which platform ... leave")
        e = next((x for _, _, x in scored if has(x, kinds)), None)
        top = [e] if e is not None else top
    if len({id(x.row) for x in top}) == 1 and len({x.header for x in top}) > 1:
        top = _column(question, top, kinds)  # one row of a table: which of its columns
    e = top[0]
    if not e.values:  # a form's label with its value on the line below ("Sala" over "3")
        below = next((x for x in found if x.row.page == e.row.page and
                      x.row.number == e.row.number + 1 and not x.label and x.values and
                      x.section == e.row.text), None)
        e = below or e
    if not e.values and kinds and not re.search(r"[.!?:;]\s*$", e.row.text):
        # a sentence that goes on on the next line, with the value asked there
        # ("... Het restant wordt" over "nagezonden op 02-04-2026, ...")
        on = next((x for x in found if x.row.page == e.row.page and
                   x.row.number == e.row.number + 1 and has(x, kinds)), None)
        v = next((v for v in on.values if _kind_of(v) in kinds), None) if on else None
        if v is not None:
            said = f'{e.row.text} {on.row.text}'
            return Found(f'"{said}": {v.text}.', [e, on], [v.text], "value")
    title = set(words(" ".join(x.row.text for x in found[:4])))  # the document's heading
    paper = bool(set(words(question)) & PAPER)
    generic = all(w in GRAMMAR or _synonyms(w) & PAPER or w in PAPER or
                  paper and (any(_similar(w, t) for t in title) or _period(w))
                  for w in next((h for _, h, x in scored if x is e), set()) - {"#value"})
    if "money" in kinds and (_money_value(e) is None or generic) and \
            not LEAST.search(question) and (total := _document_total(found)) is not None:
        e = total  # "how much was paid for parking?", "how much is this month's bill?"
    if "date" in kinds and not any(v.kind == "date" for v in e.values) and \
            (day := next((v for v in V.find(e.section) if v.kind == "date"), None)):
        # a timetable of days: the date stands in the heading above ("Thursday 11 June")
        return Found(f"{e.name}: {e.section}.", [e], [day.text], "value")
    clock = [v for v in e.values or e.row.values if v.kind == "time"]
    span = next((v for v in e.row.values if v.kind == "duration"), None)
    if len(clock) == 2 and span is None and "span" in kinds:
        return _gap(clock[0], clock[1], [e], question)  # open 10am - 2pm: 4 hours
    if len(clock) == 2 and span is None and UNTIL.search(question):
        return Found(_sentence(e, [clock[1]], pages), [e], [clock[1].text], "value")
    if clock and span is not None and ENDS.search(question):
        end = clock[0].minutes + span.minutes  # starts at 09:00, takes 1h 45m: ends 10:45
        said = V.clock(end)
        return Found(f"{e.name}: {clock[0].text} + {span.text} = {said}.", [e], [said],
                     "difference")
    if "weight" in kinds and (mass := _mass(e)):
        return Found(_sentence(e, [mass], pages), [e], [mass], "value")
    if "count" in kinds:
        return _count(question, e, pages)
    if "person" in kinds and (person := V.PERSON.search(e.said)):
        said = person.group(0)  # "Mrs Helen Carraway", not her name twice
        text = f"{said}{_where(e, pages)}." if said in e.label else _sentence(e, [said], pages)
        return Found(text, [e], [said], "value")
    if "code" in kinds and (code := V.CODE.search(e.said)):
        return Found(_sentence(e, [code.group(0)], pages), [e], [code.group(0)], "value")
    vals = [v for v in e.values if v.kind != "amount" or v.money or "money" not in kinds]
    if "money" in kinds and e.quantity and _quantities(question, words(e.label)) \
            and 1 in _quantities(question, words(e.label)).values():
        count, unit = e.quantity  # "what does one yogurt cost?": the price of one
        line = _money_value(e)
        text = unit.text if unit is not None else \
            V.money(line.number / count, line) if line is not None and count else None
        if text is not None:
            return Found(_sentence(e, [text], pages), [e], [text], "value")
    if not vals and e.header and len(e.cells) == 1 and not e.cells[0].values:
        said = e.cells[0].text  # a table's cell of words: "Room: Language Lab"
        return Found(_sentence(e, [said], pages), [e], [said], "value")
    if not vals:
        return Found(_sentence(e, [], pages), [e], [], "row")
    given = [v for v in vals if any(_same(a, v) for a in V.find(question, dotted=True))]
    if len(given) < len(vals):
        vals = [v for v in vals if v not in given]  # not the value the question gave
    elif given and given[0].kind == "time" and "time" in kinds and \
            (trip := _travel_time(found)) is not None:
        # asked what time, given the time it gives: the time plus the page's one travel
        # time ("if I take the 12:15, when do I get there?" on "Crossing time 40 minutes")
        said = V.clock(given[0].minutes + trip.minutes)
        return Found(f"{given[0].text} + {trip.text} = {said}.", [e], [said], "difference")
    elif given and len(e.row.cells) > 1 and not WHEN.search(question):
        # it gives only the value asked by: the rest of its row answers ("which train
        # leaves at 10:12?")
        rest = [c.text for c in e.row.cells if not any(v in given for v in c.values)]
        if rest:
            said = "  ".join(rest)
            return Found(f'At {given[0].text}: "{said}"{_where(e, pages)}.', [e], [said],
                         "row")
    wanted = [v for v in vals if _kind_of(v) in kinds] or vals
    if all(v.kind == "time" for v in wanted) and len(wanted) > 1 and not e.header:
        shown = wanted
    elif "money" in kinds and (money := _money_value(e)) is not None:
        shown = [money]
    else:
        shown = [wanted[-1] if "money" in kinds or not kinds else wanted[0]]
    return Found(_sentence(e, shown, pages), [e], [v.text for v in shown], "value")


MASS = re.compile(r"(?<![\d.,])\d[\d.,]*\s?(?:kg|g|gr|lb|lbs|oz)(?![^\W\d_])", re.I)


def _mass(e: Entry) -> str | None:
    """A weight the entry gives ("1,245 kg"), for "how heavy"."""
    m = next((m for c in [*e.cells, *e.details] if (m := MASS.search(c.text))), None)
    return m.group(0) if m else None


def _kind_of(v: V.Value) -> str:
    if v.kind == "amount":
        return "money" if v.money else "count"
    return {"duration": "span"}.get(v.kind, v.kind)


def _column(question: str, cells: list[Entry], kinds: set[str]) -> list[Entry]:
    """Which column of one table row answers: for how many, the quantity; the unit price for
    "per night", "each", "one"; else a price, the last one (the line's amount), before counts
    and words."""
    if "count" in kinds:
        quantity = set(next(g for g in GLOSSARY if "quantity" in g)) | {"qta", "anz", "stk"}
        counted = [e for e in cells if set(words(e.header)) & quantity] or \
            [e for e in cells if e.values and not _money_value(e)]
        return counted + [e for e in cells if e not in counted]
    price = set(next(g for g in GLOSSARY if "price" in g)) | {"unit", "einzelpreis", "unitaire"}
    if PER.search(question):
        unit = [e for e in cells if set(words(e.header)) & price and _money_value(e)]
        if unit:
            return unit + [e for e in cells if e not in unit]
    money = [e for e in cells if _money_value(e) is not None]
    return money[::-1] + [e for e in cells if e not in money] if money else cells


def _count(question: str, e: Entry, pages: int) -> Found:
    """How many: the quantity of "6 x 0,45", the number before a unit the question names
    ("3 nights", "243 kWh"), else the entry's first whole number."""
    if e.quantity is not None:
        n = str(e.quantity[0])
        return Found(_sentence(e, [n], pages), [e], [n], "value")
    asked = set(words(question))
    text = " ".join(c.text for c in e.cells + e.details) or e.row.text
    for m in re.finditer(r"(\d[\d.,]*)\s*([^\W\d_]+)", text):
        if any(_similar(a, _fold(m.group(2))) for a in asked):
            return Found(_sentence(e, [m.group(1)], pages), [e], [m.group(1)], "value")
    whole = [v for v in e.values if v.kind == "amount" and not v.money] or \
        [v for v in V.find(e.row.text) if v.kind == "amount" and not v.money]
    if whole:
        return Found(_sentence(e, [whole[0]], pages), [e], [whole[0].text], "value")
    return Found(_sentence(e, [], pages), [e], [], "row")


def _arithmetic(question, found, known, scored, numbers) -> Found | None:
    """Totals of what the question names (times how many), the change from a note, a bill
    split between people, a total without some items."""
    quantities = _quantities(question, known)
    picked: list[tuple[Entry, int]] = []
    covered: set[str] = set()
    rows: set[tuple[int, str]] = set()
    for score, hit, e in scored:
        fresh = {h for h in hit - covered if not h.startswith("#")}  # named by its words
        if score < scored[0][0] * 0.25 or not fresh or (id(e.row), e.label) in rows:
            continue
        if _money_value(e) is None or TOTAL_ROW.search(e.label) and len(scored) > 1 and \
                not TOTAL_ROW.search(question):
            continue
        count = next((n for q, n in quantities.items() if any(_similar(q, h) for h in hit)), 1)
        if count == 1 and e.header:  # a table's row: its amount, not its unit price,
            # unless the question names the column ("a medium margherita")
            last = max((x for x in found if x.row is e.row and x.label == e.label and
                        _money_value(x) is not None), key=lambda x: x.box[0], default=e)
            if score <= next((s for s, _, x in scored if x is last), 0.0) + 1e-9:
                e = last
        picked.append((e, count))
        covered |= hit
        rows.add((id(e.row), e.label))  # "Adult 14.80  Child 7.40": two in one row
    counts = set(quantities.values())
    plain = [n for n in numbers if n.number is not None and
             not any(n.number == c for c in counts)]
    spelled = [NUMBER_WORDS[w] for w in re.findall(r"[^\W\d_]+", _fold(question))
               if w in NUMBER_WORDS and NUMBER_WORDS[w] > 1]
    people = [int(n.number) for n in plain
              if n.number == n.number.to_integral() and 1 < n.number < 100] or spelled
    split, change, without = SPLIT.search(question), CHANGE.search(question), \
        WITHOUT.search(question)
    total_entry = _document_total(found)
    if without and total_entry is not None and picked:
        left = [(e, n) for e, n in picked if e is not total_entry]
        if left:
            less = sum((_money_value(e).number * n for e, n in left), Decimal(0))
            like = _money_value(total_entry)
            rest = like.number - less
            names = ", ".join(e.label for e, _ in left)
            return Found(f"Without {names}, it comes to {V.money(rest, like)} "
                         f"({like.text} - {V.money(less, like)}).",
                         [total_entry, *(e for e, _ in left)], [V.money(rest, like)], "total")
    named_total = next((e for e, _ in picked if TOTAL_ROW.search(e.label)), None)
    if named_total is not None and TOTAL.search(question) and not split and not change:
        v = _money_value(named_total)  # "the total with service": the total says it
        return Found(f"{named_total.label}: {v.text}.", [named_total], [v.text], "total")
    if not picked or (split or change) and not (quantities or len(picked) > 1):
        if total_entry is None:
            return None
        picked = [(total_entry, 1)]
    like = _money_value(picked[0][0])
    if len(picked) == 1 and picked[0][1] == 1 and TOTAL.search(question) and people and \
            not split and picked[0][0] is not total_entry:
        picked = [(picked[0][0], people[-1])]  # "for two people, the coperto in total"
    total = sum((_money_value(e).number * n for e, n in picked), Decimal(0))
    parts = " + ".join(f"{n} × {_short(e.label)} ({_money_value(e).text})" if n != 1 else
                       f"{_short(e.label)} ({_money_value(e).text})" for e, n in picked)
    cited = [e for e, _ in picked]
    if change and plain and not CHANGE_ROW.search(" ".join(e.label for e in cited)):
        paid = plain[-1].number
        back = paid - total
        return Found(f"The change from {V.money(paid, like)} is {V.money(back, like)} "
                     f"({parts} = {V.money(total, like)}).", cited, [V.money(back, like)],
                     "change")
    if change and not plain:
        row = next((e for e in found if CHANGE_ROW.search(e.label) and _money_value(e)), None)
        if row is not None:
            v = _money_value(row)
            return Found(f"{row.label}: {v.text}.", [row], [v.text], "change")
    if split and people:
        n = people[-1]
        each = (total / n).quantize(Decimal("0.01"))
        return Found(f"Split {n} ways, {V.money(total, like)} is {V.money(each, like)} each.",
                     cited, [V.money(each, like)], "split")
    if len(picked) == 1 and picked[0][1] == 1:
        e = picked[0][0]
        if TOTAL.search(question) and e is total_entry:
            return Found(f"{e.label}: {like.text}.", [e], [like.text], "total")
        return None  # one thing, once: its value, not a sum
    return Found(f"That comes to {V.money(total, like)}: {parts}.", cited,
                 [V.money(total, like)], "total")


PERIODS = {"week", "weekly", "month", "monthly", "year", "yearly", "quarter", "quarterly",
           *(w for w in V.MONTHS if len(w) > 3)}


PERIODS |= {s for p in ("week", "month", "year") for s in _synonyms(p)}


def _period(word: str) -> bool:
    """A word for the period a bill is for ("this month's bill", "the March invoice"):
    it names the bill, not a line of it."""
    return any(_inflected(word, p) for p in PERIODS)


def _short(label: str) -> str:
    """A label without the figures in its brackets ("Child (5-15)"): a sum's parts name
    their items, and the ages or sizes there are no part of the sum."""
    return re.sub(r"\s*\([^)]*\d[^)]*\)", "", label).strip() or label


CHANGE_ROW = _cue(r"change", r"r[uü]ckgeld", r"wechselgeld", r"cambio", r"rendu", r"resto",
                  r"wisselgeld", r"troco", r"monnaie")


def _document_total(found: list[Entry]) -> Entry | None:
    """The entry that gives the document's total: the last labelled as one, else the one
    with the largest amount of money."""
    named = [e for e in found if TOTAL_ROW.search(e.label) and _money_value(e) is not None]
    if named:
        return max(named, key=lambda e: _money_value(e).number)
    priced = [e for e in found if _money_value(e) is not None]
    return max(priced, key=lambda e: _money_value(e).number) if priced else None
