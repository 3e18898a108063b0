"""The English–French lexicon of the `en_fr_synth` corpus.

Plain data: whitespace tables parsed once into named tuples. Lemmas are those of
pyrealb 3.3.1's lexicons (`EN_ADDITIONS` lists the few English words it lacks);
`tests/data/test_synth.py` checks that every entry realises in both languages.

Semantic kinds keep sentences sensible ("the cat ate the apple", never "the apple
ate the treaty"): P person, A animal, F food, D drink, O object, V vehicle,
C document, I idea, L place.
"""

from typing import NamedTuple


class Noun(NamedTuple):
  en: str
  fr: str
  gender: str  # French grammatical gender: 'm' or 'f'
  kind: str  # one of P A F D O V C I L
  sex: str = "n"  # English pronoun: 'm' he, 'f' she, 'n' it, '' a person of unknown sex (never a pronoun)
  mass: bool = False  # uncountable: singular only, indefinite = partitive (du pain, some bread)
  fr_plural: str | None = None  # irregular French plural, as the realiser must produce it


class Adjective(NamedTuple):
  en: str
  fr: str
  prenominal: bool  # French position: une grande maison / une voiture rouge
  order: int  # English order class: 1 opinion, 2 size, 3 age, 4 quality, 5 colour, 6 origin
  kinds: str  # kinds of noun it can modify


class Verb(NamedTuple):
  en: str
  fr: str
  subjects: str  # kinds of subject
  objects: str  # kinds of direct object; '' for an intransitive verb
  motion: bool = False  # takes to/from complements (come to the market / venir au marché)
  needs_goal: bool = False  # always has one (go to the market / aller au marché, never bare aller)
  recipient: bool = False  # takes "to someone" (give the book to the teacher / donner le livre au professeur)


class Preposition(NamedTuple):
  en: str
  fr: str  # may be several words; the last one contracts (près de le lac -> près du lac)
  role: str  # 'place', 'with', 'for', 'to', 'from', 'of'
  complements: str  # kinds of its noun phrase


class Adverb(NamedTuple):
  en: str
  fr: str
  tenses: tuple[str, ...]  # the tenses it fits


# kind, then one noun a line: english french gender [he|she|someone] [mass] [pl=plural].
# A feminine person may have a masculine lemma: pyrealb makes "acteur" f into "actrice".
_NOUNS = """
P
man homme m he
woman femme f she
boy garçon m he
girl fille f she
king roi m he
queen reine f she
father père m he
mother mère f she
brother frère m he
sister soeur f she
son fils m he pl=fils
daughter fille f she
uncle oncle m he
aunt tante f she
prince prince m he
princess princesse f she
actor acteur m he
actress acteur f she
nurse infirmier f someone
child enfant m someone
teacher professeur m someone
doctor médecin m someone
minister ministre m someone
student étudiant m someone
farmer fermier m someone
lawyer avocat m someone
writer écrivain m someone
artist artiste m someone
soldier soldat m someone
neighbour voisin m someone
president président m someone
judge juge m someone
driver chauffeur m someone
baker boulanger m someone
singer chanteur m someone
worker ouvrier m someone
painter peintre m someone
cook cuisinier m someone
journalist journaliste m someone
engineer ingénieur m someone
pupil élève m someone
friend ami m someone
guest invité m someone
tourist touriste m someone
thief voleur m someone
A
cat chat m
dog chien m
horse cheval m pl=chevaux
bird oiseau m pl=oiseaux
cow vache f
mouse souris f pl=souris
rabbit lapin m
wolf loup m
bear ours m pl=ours
fox renard m
lion lion m
duck canard m
pig cochon m
hen poule f
goat chèvre f
snake serpent m
frog grenouille f
monkey singe m
elephant éléphant m
tiger tigre m
sheep mouton m
owl hibou m pl=hiboux
F
apple pomme f
bread pain m mass
cake gâteau m pl=gâteaux
cheese fromage m mass
soup soupe f mass
egg oeuf m
orange orange f
banana banane f
carrot carotte f
meat viande f mass
salad salade f
pie tarte f
sandwich sandwich m
chocolate chocolat m mass
strawberry fraise f
cherry cerise f
pear poire f
lemon citron m
tomato tomate f
rice riz m mass pl=riz
D
water eau f mass
milk lait m mass
wine vin m mass
coffee café m mass
tea thé m mass
juice jus m mass
beer bière f mass
O
book livre m
key clé f
box boîte f
table table f
chair chaise f
bag sac m
pen stylo m
glass verre m
bottle bouteille f
ball ballon m
hat chapeau m pl=chapeaux
shoe chaussure f
coat manteau m pl=manteaux
computer ordinateur m
phone téléphone m
picture tableau m pl=tableaux
cup tasse f
knife couteau m pl=couteaux
plate assiette f
lamp lampe f
clock horloge f
ring bague f
watch montre f
gift cadeau m pl=cadeaux
toy jouet m
umbrella parapluie m
bed lit m
dress robe f
shirt chemise f
flower fleur f
stone pierre f
chest coffre m
basket panier m
mirror miroir m
V
car voiture f
bicycle vélo m
boat bateau m pl=bateaux
train train m
truck camion m
plane avion m
bus autobus m pl=autobus
C
letter lettre f
treaty traité m
contract contrat m
agreement accord m
law loi f
report rapport m
newspaper journal m pl=journaux
map carte f
ticket billet m
novel roman m
poem poème m
list liste f
I
idea idée f
story histoire f
song chanson f
question question f
answer réponse f
problem problème m
plan plan m
decision décision f
message message m
secret secret m
truth vérité f
joke blague f
lesson leçon f
L
house maison f
city ville f
village village m
garden jardin m
school école f
market marché m
church église f
hospital hôpital m pl=hôpitaux
station gare f
street rue f
park parc m
forest forêt f
river rivière f
beach plage f
museum musée m
library bibliothèque f
shop magasin m
restaurant restaurant m
hotel hôtel m
office bureau m pl=bureaux
kitchen cuisine f
room chambre f
castle château m pl=châteaux
bridge pont m
mountain montagne f
field champ m
farm ferme f
island île f
lake lac m
sea mer f
country pays m pl=pays
bank banque f
airport aéroport m
theatre théâtre m
factory usine f
port port m
road route f
square place f
tower tour f
cave grotte f
"""

# english french position order kinds
_ADJECTIVES = """
beautiful beau pre 1 PAOVL
pretty joli pre 1 POVL
good bon pre 1 PFDCI
bad mauvais pre 1 PFDCI
nice gentil pre 1 PA
famous célèbre post 1 PACL
strange étrange post 1 PAFOCIL
important important post 1 PCI
interesting intéressant post 1 PCIL
difficult difficile post 1 CI
easy facile post 1 CI
funny drôle post 1 PACI
boring ennuyeux post 1 PCIL
delicious délicieux post 1 FD
dangerous dangereux post 1 PAVL
clever intelligent post 1 PA
brave courageux post 1 P
happy heureux post 1 PA
sad triste post 1 PACI
tired fatigué post 1 PA
angry fâché post 1 PA
sick malade post 1 PA
rich riche post 1 P
big grand pre 2 PAOVL
small petit pre 2 PAFOVL
large gros pre 2 AFOV
long long pre 2 OVCIL
huge énorme post 2 AFOVL
tiny minuscule post 2 AFOVL
high haut pre 2 L
short court post 2 CI
old vieux pre 3 PAOVL
young jeune pre 3 PA
new nouveau pre 3 POVCIL
modern moderne post 3 OVL
heavy lourd post 4 AOV
light léger post 4 OV
hot chaud post 4 FD
cold froid post 4 FDL
fresh frais post 4 FD
sweet sucré post 4 FD
empty vide post 4 OVL
full plein post 4 OV
broken cassé post 4 OV
dirty sale post 4 AOVL
wet mouillé post 4 AO
dark sombre post 4 L
quiet calme post 4 PAL
fast rapide post 4 AV
slow lent post 4 AV
red rouge post 5 FDOVL
blue bleu post 5 OVL
green vert post 5 FOVL
black noir post 5 AOVL
white blanc post 5 AFDOVL
yellow jaune post 5 FOVL
grey gris post 5 AOVL
brown brun post 5 AOV
French français post 6 PFDOVCL
English anglais post 6 PFDOVCL
Italian italien post 6 PFDOVCL
German allemand post 6 PFDOVCL
Spanish espagnol post 6 PFDOVCL
"""

# english french subjects objects ('-' intransitive, '~' of motion, '>' of motion with a goal) [to: takes a recipient]
_VERBS = """
give donner P AFDOVC to
offer offrir P AFDOC to
lend prêter P OVC to
eat manger PA F
drink boire PA D
see voir PA PAFDOVCL
find trouver PA PAFDOVCIL
buy acheter P FDOVCL
sell vendre P AFDOVCL to
sign signer P C
write écrire P CI to
read lire P C to
open ouvrir P OVC
close fermer P OV
break casser PA O
build construire P OVL
paint peindre P OVL
clean nettoyer P OVL
carry porter PA PAFDO
take prendre P FDOVC
bring apporter P FDOC to
love aimer P PAFDOVCIL
hate détester P PAFDOVCIL
prefer préférer P AFDOVCIL
watch regarder PA PAOVL
hear entendre PA PAI
visit visiter P L
cross traverser PA L
follow suivre PA PAV
help aider P PA
call appeler P PA
meet rencontrer P P
know connaître P PACIL
forget oublier P PAOCI
lose perdre P AOVCI
cook préparer P F
wash laver P AOV
repair réparer P OV
throw lancer P O
catch attraper PA AO
push pousser PA POV
pull tirer PA POV
send envoyer P AFOCI to
receive recevoir P AFOCI
choose choisir P PAFDOVCIL
hide cacher PA PAFOC
show montrer P AFOVCL to
finish finir P FDCI
start commencer P CI
destroy détruire PA OVCL
discover découvrir P AOCIL
describe décrire P PAFOVCIL
explain expliquer P CI to
accept accepter P OCI
refuse refuser P FDOCI
protect protéger PA PAL
attack attaquer PA PAVL
bite mordre A PA
chase chasser PA PA
feed nourrir P PA
steal voler P AFDOVC
leave quitter PA L
speak parler P - to
sleep dormir PA -
run courir PA -
walk marcher PA -
laugh rire P -
cry pleurer P -
sing chanter PA -
dance danser P -
swim nager PA -
wait attendre PA -
work travailler P -
play jouer PA -
smile sourire P -
jump sauter PA -
shout crier P -
travel voyager P -
live vivre PA -
fall tomber PAO -
stay rester PA -
enter entrer PA -
arrive arriver PAV ~
go aller PA >
come venir PA ~
return revenir PA ~
"""

PREPOSITIONS: tuple[Preposition, ...] = (
    Preposition("in", "dans", "place", "VL"),
    Preposition("on", "sur", "place", "OVL"),
    Preposition("under", "sous", "place", "OVL"),
    Preposition("near", "près de", "place", "OVL"),
    Preposition("behind", "derrière", "place", "OVL"),
    Preposition("in front of", "devant", "place", "OVL"),
    Preposition("next to", "à côté de", "place", "OVL"),
    Preposition("far from", "loin de", "place", "L"),
    Preposition("around", "autour de", "place", "OVL"),
    Preposition("with", "avec", "with", "PA"),
    Preposition("without", "sans", "with", "PA"),
    Preposition("for", "pour", "for", "PA"),
    Preposition("to", "à", "to", "L"),
    Preposition("towards", "vers", "to", "L"),
    Preposition("into", "dans", "to", "L"),
    Preposition("from", "de", "from", "L"),
    Preposition("of", "de", "of", "P"),
)

ADVERBS: tuple[Adverb, ...] = (
    Adverb("yesterday", "hier", ("past",)),
    Adverb("tomorrow", "demain", ("future",)),
    Adverb("today", "aujourd'hui", ("present", "past", "future")),
    Adverb("now", "maintenant", ("present",)),
)

# Function words. A determiner is (english, french) pyrealb calls: lemma and options.
DETERMINERS: dict[str, tuple[tuple[str, dict], tuple[str, dict]]] = {
    "the": (("the", {}), ("le", {})),
    "a": (("a", {}), ("un", {})),  # plural: bare English noun, French des
    "this": (("this", {}), ("ce", {})),
    "my": (("my", {"pe": 1}), ("mon", {"pe": 1})),
    "your": (("my", {"pe": 2}), ("votre", {})),
    "his": (("my", {"pe": 3, "g": "m"}), ("mon", {"pe": 3})),
    "her": (("my", {"pe": 3, "g": "f"}), ("mon", {"pe": 3})),
    "our": (("my", {"pe": 1, "ow": "p"}), ("notre", {"pe": 1})),
    "their": (("my", {"pe": 3, "ow": "p"}), ("notre", {"pe": 3})),
}

# (english, french, comma before it) joining two clauses.
CONJUNCTIONS: tuple[tuple[str, str, bool], ...] = (
    ("and", "et", False),
    ("but", "mais", True),
    ("because", "parce que", False),
    ("while", "pendant que", False),
    ("so", "donc", True),
    ("or", "ou", False),
)

# English words pyrealb 3.3.1 lacks, added to its lexicon by `synth`.
EN_ADDITIONS: dict[str, dict] = {
    "broken": {"A": {"tab": "a1"}},
}


def _nouns(table: str) -> tuple[Noun, ...]:
  nouns, kind = [], None
  for line in table.strip().splitlines():
    fields = line.split()
    if len(fields) == 1:
      kind = fields[0]
      continue
    en, fr, gender, *flags = fields
    sex = "m" if "he" in flags else "f" if "she" in flags else "" if "someone" in flags else "n"
    plural = next((f[3:] for f in flags if f.startswith("pl=")), None)
    nouns.append(Noun(en, fr, gender, kind, sex, "mass" in flags, plural))
  return tuple(nouns)


def _adjectives(table: str) -> tuple[Adjective, ...]:
  return tuple(
      Adjective(en, fr, position == "pre", int(order), kinds)
      for en, fr, position, order, kinds in map(str.split, table.strip().splitlines()))


def _verbs(table: str) -> tuple[Verb, ...]:
  return tuple(
      Verb(en, fr, subjects, objects.strip("-~>"), objects in ("~", ">"), objects == ">", recipient == ["to"])
      for en, fr, subjects, objects, *recipient in map(str.split, table.strip().splitlines()))


NOUNS = _nouns(_NOUNS)
ADJECTIVES = _adjectives(_ADJECTIVES)
VERBS = _verbs(_VERBS)


def content_pairs() -> list[tuple[str, str]]:
  """Every (english, french) content-word pair: nouns, adjectives, verbs, prepositions, adverbs."""
  entries = (*NOUNS, *ADJECTIVES, *VERBS, *PREPOSITIONS, *ADVERBS)
  return [(e.en, e.fr) for e in entries]
