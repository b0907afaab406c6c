"""The verifier's reference case table: ``(category, pred, ref, expected)``.

Shared by the tests (tests/cast_core/test_verify_cases.py), the math-verify cross-check
(``python -m cast_core.verify.cases``) and the benchmark (benchmarks/bench_verify.py).
Near-misses that must be rejected are as important as the matches.
"""

from __future__ import annotations

__all__ = ["CASES", "REWARD_CASES", "ADVERSARIAL"]

CASES: list[tuple[str, str, str, bool]] = [
    # -- integers / decimals / separators / scientific ---------------------------------
    ("int", "42", "42", True),
    ("int", "042", "42", True),
    ("int", "-7", "-7", True),
    ("int", "+7", "7", True),
    ("int", "7", "-7", False),
    ("int", "12", "1/2", False),
    ("int", "2", "2.5", False),
    ("int", "41", "42", False),
    ("int", "100", "1000", False),
    ("dec", "0.5", "0.5", True),
    ("dec", "0.50", "0.5", True),
    ("dec", ".5", "0.5", True),
    ("dec", "2.0", "2", True),
    ("dec", "3.14", "3.15", False),
    ("dec", "0.3333333", "1/3", True),
    ("dec", "0.333", "1/3", False),
    ("dec", "2.5", "5/2", True),
    ("dec", "1.0000001", "1", True),
    ("dec", "1.001", "1", False),
    ("sep", "1,000", "1000", True),
    ("sep", "1,234,567", "1234567", True),
    ("sep", "1,234.5", "1234.5", True),
    ("sep", "1{,}000", "1000", True),
    ("sep", "1\\,000", "1000", True),
    ("sep", "1,000", "100", False),
    ("sci", "1e-3", "0.001", True),
    ("sci", "1.5e3", "1500", True),
    ("sci", "2E2", "200", True),
    ("sci", "1e3", "100", False),
    ("sci", "3\\times 10^{5}", "300000", True),
    ("sci", "3 \\cdot 10^5", "300000", True),
    ("sci", "6.02\\times10^{23}", "6.02e23", True),
    ("sci", "6.02\\times10^{23}", "6.02e22", False),
    # -- percentages -----------------------------------------------------------------
    ("pct", "50%", "50\\%", True),
    ("pct", "50%", "0.5", True),
    ("pct", "50\\%", "50", True),
    ("pct", "0.5", "50\\%", True),
    ("pct", "25%", "0.5", False),
    ("pct", "12.5\\%", "0.125", True),
    ("pct", "40%", "4", False),
    # -- fractions -------------------------------------------------------------------
    ("frac", "1/2", "0.5", True),
    ("frac", "\\frac{1}{2}", "1/2", True),
    ("frac", "\\dfrac{3}{4}", "0.75", True),
    ("frac", "\\tfrac{3}{4}", "3/4", True),
    ("frac", "\\frac12", "1/2", True),
    ("frac", "\\frac{2}{4}", "\\frac{1}{2}", True),
    ("frac", "-\\frac{1}{3}", "\\frac{-1}{3}", True),
    ("frac", "\\frac{1}{3}", "\\frac{1}{4}", False),
    ("frac", "1/3", "3", False),
    ("frac", "\\frac{10}{3}", "3\\frac{1}{3}", True),
    ("frac", "2\\frac{1}{2}", "2.5", True),
    ("frac", "2\\frac{1}{2}", "1", False),
    ("frac", "\\frac{x}{2}", "x/2", True),
    ("frac", "\\frac{1}{x}", "x", False),
    ("frac", "7/2", "2/7", False),
    # -- LaTeX ------------------------------------------------------------------------
    ("latex", "\\sqrt{2}", "2^{1/2}", True),
    ("latex", "\\sqrt{8}", "2\\sqrt{2}", True),
    ("latex", "\\sqrt{12}", "2\\sqrt{3}", True),
    ("latex", "\\sqrt{12}", "3\\sqrt{2}", False),
    ("latex", "\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2", True),
    ("latex", "\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2}", False),
    ("latex", "\\sqrt[3]{27}", "3", True),
    ("latex", "\\sqrt[3]{-8}", "-2", True),
    ("latex", "\\sqrt{16}", "4", True),
    ("latex", "\\sqrt{2}", "1.41421356", True),
    ("latex", "\\sqrt{2}", "1.41", False),
    ("latex", "2\\pi", "2 \\cdot \\pi", True),
    ("latex", "\\pi", "3.14159265", True),
    ("latex", "\\pi", "3.14", False),
    ("latex", "\\frac{355}{113}", "\\pi", False),
    ("latex", "\\frac{\\pi}{2}", "\\pi/2", True),
    ("latex", "\\frac{\\pi}{3}", "\\frac{\\pi}{6}", False),
    ("latex", "2^{10}", "1024", True),
    ("latex", "2^10", "1024", True),
    ("latex", "2^{-1}", "0.5", True),
    ("latex", "10^{3}", "1000", True),
    ("latex", "3^{2}", "6", False),
    ("latex", "6 \\cdot 7", "42", True),
    ("latex", "6 \\times 7", "42", True),
    ("latex", "\\left( \\frac{1}{2} \\right)", "0.5", True),
    ("latex", "\\left(3\\right)^2", "9", True),
    ("latex", "$5$", "5", True),
    ("latex", "$$\\frac{1}{4}$$", "0.25", True),
    ("latex", "\\(7\\)", "7", True),
    ("latex", "\\boxed{7}", "7", True),
    ("latex", "\\text{5}", "5", True),
    ("latex", "\\textbf{12}", "12", True),
    ("latex", "\\mathrm{e}", "e", True),
    ("latex", "e^{i\\pi}", "-1", True),
    ("latex", "5!", "120", True),
    ("latex", "\\binom{5}{2}", "10", True),
    ("latex", "\\log_2 8", "3", True),
    ("latex", "\\ln(e^2)", "2", True),
    ("latex", "|-3|", "3", True),
    ("latex", "\\sin(\\pi/6)", "\\frac{1}{2}", True),
    ("latex", "\\cos(0)", "1", True),
    ("latex", "\\sqrt{2}+\\sqrt{3}", "\\sqrt{5}", False),
    ("latex", "\\frac{1+\\sqrt{5}}{2}", "\\frac{2}{\\sqrt{5}-1}", True),
    ("latex", "2\\sqrt{2}", "\\sqrt{2}", False),
    # -- units / text / degrees / money ----------------------------------------------
    ("units", "5 cm", "5", True),
    ("units", "5\\text{ cm}", "5", True),
    ("units", "\\text{5 meters}", "5", True),
    ("units", "12 \\text{ dollars}", "12", True),
    ("units", "\\$12", "12", True),
    ("units", "\\$1,250.50", "1250.5", True),
    ("units", "90^\\circ", "90", True),
    ("units", "90^{\\circ}", "90", True),
    ("units", "45°", "45", True),
    ("units", "30 \\text{ cm}^2", "30", True),
    ("units", "5 cm", "6", False),
    ("units", "90^\\circ", "45", False),
    ("units", "7 apples", "7", True),
    ("units", "12\\text{ m}^2", "12", True),
    ("units", "3\\sqrt{2}\\text{ cm}", "\\sqrt{18}", True),
    ("units", "8\\pi \\text{ square units}", "8\\pi", True),
    ("set", "1 \\text{ and } 2", "\\{1, 2\\}", True),
    ("text", "\\text{Monday}", "Monday", True),
    ("text", "\\text{yes}", "yes", True),
    ("text", "\\text{Tuesday}", "Monday", False),
    ("text", "even", "odd", False),
    # -- equations / prefixes --------------------------------------------------------
    ("eq", "x = 5", "5", True),
    ("eq", "x=5", "x = 5", True),
    ("eq", "5", "x=5", True),
    ("eq", "y = 2x + 1", "2x+1", True),
    ("eq", "x = 4", "5", False),
    ("eq", "x \\in [1, 2]", "[1,2]", True),
    # -- tuples / intervals / sets ---------------------------------------------------
    ("tuple", "(1, 2)", "(1,2)", True),
    ("tuple", "(2, 1)", "(1, 2)", False),
    ("tuple", "(1, 2, 3)", "(1, 2)", False),
    ("tuple", "(\\frac{1}{2}, 3)", "(0.5, 3)", True),
    ("tuple", "\\left(1, -\\frac{3}{2}\\right)", "(1, -1.5)", True),
    ("tuple", "(1,2)", "1, 2", True),
    ("tuple", "(x, 2x)", "(x, x+x)", True),
    ("interval", "[1, 2]", "[1,2]", True),
    ("interval", "[1, 2]", "(1, 2)", False),
    ("interval", "(1, 2]", "(1, 2]", True),
    ("interval", "(1, 2]", "[1, 2)", False),
    ("interval", "(-\\infty, 3)", "(-\\infty, 3)", True),
    ("interval", "(-\\infty, 3]", "(-\\infty, 3)", False),
    ("interval", "[0, \\infty)", "[0,\\infty)", True),
    ("interval", "(-\\infty, \\infty)", "(-\\infty,\\infty)", True),
    ("interval", "(-\\infty, 1) \\cup (2, \\infty)", "(2, \\infty) \\cup (-\\infty, 1)", True),
    ("interval", "(-\\infty, 1) \\cup (2, \\infty)", "(-\\infty, 1] \\cup (2, \\infty)", False),
    ("set", "\\{1, 2, 3\\}", "\\{3, 2, 1\\}", True),
    ("set", "\\{1, 2\\}", "\\{1, 3\\}", False),
    ("set", "\\{1, 2\\}", "\\{1, 2, 3\\}", False),
    ("set", "1, 2", "2, 1", True),
    ("set", "x = 1, x = 2", "2, 1", True),
    ("set", "1, 2, 3", "1, 2", False),
    ("set", "-1, 1", "1, -1", True),
    ("set", "\\{\\frac{1}{2}, \\sqrt{2}\\}", "\\{\\sqrt{2}, 0.5\\}", True),
    ("set", "\\{5\\}", "5", True),
    ("set", "2 and 3", "3, 2", True),
    ("set", "\\{(1,2), (3,4)\\}", "\\{(3,4), (1,2)\\}", True),
    ("set", "\\{(1,2), (3,4)\\}", "\\{(2,1), (3,4)\\}", False),
    # -- multiple choice -------------------------------------------------------------
    ("mc", "B", "B", True),
    ("mc", "(B)", "B", True),
    ("mc", "B", "(B)", True),
    ("mc", "\\text{(C)}", "C", True),
    ("mc", "\\textbf{(D)}", "D", True),
    ("mc", "(A) 12", "A", True),
    ("mc", "C", "B", False),
    ("mc", "(A)", "(E)", False),
    ("mc", "b", "B", True),
    ("mc", "x", "B", False),
    # -- symbolic --------------------------------------------------------------------
    ("sym", "x+1", "1+x", True),
    ("sym", "x+1", "x-1", False),
    ("sym", "2x", "x+x", True),
    ("sym", "2x", "x^2", False),
    ("sym", "(x+1)^2", "x^2+2x+1", True),
    ("sym", "(x+1)^2", "x^2+1", False),
    ("sym", "x^2-1", "(x-1)(x+1)", True),
    ("sym", "\\frac{x^2-1}{x-1}", "x+1", True),
    ("sym", "\\frac{x}{y}", "\\frac{y}{x}", False),
    ("sym", "xy", "yx", True),
    ("sym", "2xy", "2 * x * y", True),
    ("sym", "a^2+b^2", "(a+b)^2", False),
    ("sym", "\\sin^2 x + \\cos^2 x", "1", True),
    ("sym", "\\sin(2x)", "2\\sin(x)\\cos(x)", True),
    ("sym", "\\sin(x)", "\\cos(x)", False),
    ("sym", "\\cos^2 x - \\sin^2 x", "\\cos 2x", True),
    ("sym", "\\sin x \\cos x", "\\frac{\\sin 2x}{2}", True),
    ("sym", "\\tan x", "\\frac{\\sin x}{\\cos x}", True),
    ("sym", "\\sqrt{x}\\sqrt{x}", "x", True),
    ("latex", "\\pi^{100}", "\\pi^{100}+1", False),
    ("latex", "\\sqrt{10^{20}+1}", "10^{10}", False),
    ("latex", "e^{-200}", "0", False),
    ("sym", "x+\\pi^{100}", "x+\\pi^{100}+1", False),
    ("sym", "e^{x}e^{y}", "e^{x+y}", True),
    ("sym", "\\ln(2x)", "\\ln 2 + \\ln x", True),
    ("sym", "\\sqrt{x^2}", "x", False),
    ("sym", "\\frac{1}{2}x", "x/2", True),
    ("sym", "0.5x", "\\frac{x}{2}", True),
    ("sym", "x^{3}", "x^3", True),
    ("sym", "x^3", "x^2", False),
    ("sym", "\\alpha + \\beta", "\\beta+\\alpha", True),
    ("sym", "a_1 + a_2", "a_2 + a_1", True),
    ("sym", "a_1 + a_2", "a_1 + a_3", False),
    ("sym", "3+2i", "2i+3", True),
    ("sym", "3+2i", "3-2i", False),
    ("sym", "(1+i)^2", "2i", True),
    ("sym", "\\frac{3x+2}{4}", "0.75x+0.5", True),
    ("sym", "k(k+1)/2", "\\frac{k^2+k}{2}", True),
    ("sym", "n!", "n(n-1)!", True),
    # -- no answer / junk ------------------------------------------------------------
    ("junk", "", "5", False),
    ("junk", "5", "", False),
    ("junk", "\\frac{1}{0}", "\\frac{1}{0}", False),
    ("junk", "??", "5", False),
    ("junk", "undefined", "5", False),
    # -- relations: equations and inequalities (one canonical link f op 0, f up to a
    #    constant factor: positive for inequalities, nonzero for equations) -----------
    ("rel", "x \\le 5", "5 \\ge x", True),
    ("rel", "x \\le 5", "x \\ge 5", False),
    ("rel", "-x > -1", "x < 1", True),
    ("rel", "-x > -1", "x > 1", False),
    ("rel", "2x+4y-3=0", "y=-\\frac12x+\\frac34", True),
    ("rel", "2x+4y-3=0", "y=-\\frac12x+\\frac32", False),
    ("rel", "3a - 6b = 9", "a = 2b + 3", True),
    ("rel", "\\frac{x^2}{4} + \\frac{y^2}{9} = 1", "9x^2 + 4y^2 = 36", True),
    ("rel", "\\frac{x^2}{4} + \\frac{y^2}{9} = 1", "4x^2 + 9y^2 = 36", False),
    ("rel", "0 < x < 1", "1 > x > 0", True),
    ("rel", "0 < x < 1", "0 < x \\le 1", False),
    ("rel", "x \\neq 3", "x != 3", True),
    ("rel", "x \\ne 3", "x \\ne 4", False),
    ("rel", "2x+1=7", "3", False),
    ("rel", "a+2b=7", "7", False),
    ("rel", "x \\geqslant 2", "2 \\leq x", True),
    # -- assignments: by value against a bare answer, by label against another -------
    ("label", "a_{3} = 2, a_{37} = 19", "a_{37} = 19, a_3 = 2", True),
    ("label", "x = 3, y = 2", "x = 2, y = 3", False),
    ("label", "x = 3, y = 2", "(3, 2)", True),
    ("label", "x = 3, y = 2", "(2, 3)", False),
    ("label", "(p, q) = (3, 2)", "p = 3, q = 2", True),
    ("label", "(p, q) = (3, 2)", "(2, 3)", False),
    ("label", "|AB| = 7", "7", True),
    ("label", "f(2) = 9", "9", True),
    ("label", "f(x) = 1", "2", False),
    ("label", "\\frac{BD}{DC} = \\frac{2}{3}", "\\frac23", True),
    ("label", "x = 1, 2, 3", "\\{3, 2, 1\\}", True),
    ("label", "n = 1, 2, 3", "n = 2, 3, 4", False),
    ("label", "x = 5", "y = 5", False),
    ("label", "f(x)", "f(y)", False),
    # -- computation chains: the last member is the value --------------------------
    ("chain", "x = 2 + 3 = 5", "5", True),
    ("chain", "x = 2 + 3 = 6", "5", False),
    ("chain", "12 \\cdot 3 = 36", "36", True),
    ("chain", "3 \\cdot 4 = 12", "13", False),
    ("chain", "y = 4 + 4 = 8", "y = 8", True),
    # -- \approx tails approximate the exact value before them -----------------------
    ("approx", "x = \\frac{1}{3} \\approx 0.33", "\\frac13", True),
    ("approx", "x = \\frac{1}{3} \\approx 0.33", "0.33", False),
    ("approx", "x \\approx 2.5", "2.5", True),
    ("approx", "\\sqrt{2} \\approx 1.41", "\\sqrt 2", True),
    # -- a reference relation accepts its solution set (asymmetric by design) --------
    ("relset", "(0, 1)", "0 < f(x) < 1", True),
    ("relset", "[0, 1)", "0 < f(x) < 1", False),
    ("relset", "x \\in [-2, 7]", "-2 \\le x \\le 7", True),
    ("relset", "y \\in [-2, 7]", "-2 \\le x \\le 7", False),
    ("relset", "[-\\frac32, -1] \\cup [1, \\frac32]", "1 \\le |z| \\le \\frac{3}{2}", True),
    ("relset", "[1, \\frac32]", "1 \\le |z| \\le \\frac{3}{2}", False),
    ("relset", "(-\\infty, 1)", "-x > -1", True),
    ("relset", "-2 \\le x \\le 7", "[-2, 7]", False),  # True only with allow_relations
    ("relset", "(-2, 2)", "x^2 < 4", True),
    # -- matrices: element-wise, any bracket spelling, small matrix arithmetic ---------
    ("matrix", "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", True),
    ("matrix", "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}", False),
    ("matrix", "\\begin{pmatrix}0.5 & 0\\end{pmatrix}", "\\begin{pmatrix}\\frac12 & 0\\end{pmatrix}", True),
    ("matrix", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1&2\\end{pmatrix}", False),
    ("matrix", "\\begin{pmatrix}1&1\\\\0&1\\end{pmatrix}^2", "\\begin{pmatrix}1&2\\\\0&1\\end{pmatrix}", True),
    ("matrix", "2\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}", True),
    ("matrix", "\\left[\\begin{array}{cc}1 & 2\\\\3 & 4\\end{array}\\right]", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
    ("matrix", "\\begin{pmatrix}x & 0\\end{pmatrix}", "\\begin{pmatrix}0 & x\\end{pmatrix}", False),
    # -- \pm: both signs (every \pm the same sign, \mp the other) --------------------
    ("pm", "1 \\pm \\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2", True),
    ("pm", "1 \\pm \\sqrt{2}", "1+\\sqrt2", False),
    ("pm", "\\pm 3", "\\{-3, 3\\}", True),
    ("pm", "\\frac{-1 \\pm \\sqrt{5}}{2}", "\\frac{-1+\\sqrt5}{2}, \\frac{-1-\\sqrt5}{2}", True),
    # -- ratios: element-wise, in order ------------------------------------------------
    ("ratio", "3:4", "3 : 4", True),
    ("ratio", "3:4", "4:3", False),
    ("ratio", "AB:BC = 2:5", "2:5", True),
    ("ratio", "6:8", "3:4", False),
    # -- number formats (a lone number only) ------------------------------------------
    ("sep", "1 000", "1000", True),
    ("sep", "12 345 678", "12345678", True),
    ("sep", "1 000", "100", False),
    ("sep", "32,\\! 349", "32349", True),
    ("sep", "32, 349", "32349", False),
    ("sep", "14 {,} 916", "14916", True),
    # -- decimal comma ("auto": a decimal where the other side is one number) ----------
    ("decomma", "1,5", "1.5", True),
    ("decomma", "0,111", "0.111", True),
    ("decomma", "1,5", "1, 5", True),
    ("decomma", "1,5", "15", False),
    ("decomma", "1,25", "1.2", False),
    # -- notation variants ----------------------------------------------------------------
    ("notation", "\\cfrac{1}{3}", "1/3", True),
    ("notation", "\\bigl( 1, 2 \\bigr)", "(1,2)", True),
    ("notation", "\\left\\{ 1, 2 \\right\\}", "\\{2, 1\\}", True),
    ("notation", "\\\\frac{1}{2}", "0.5", True),
    ("notation", "\\sqrt3", "3^{1/2}", True),
    ("notation", "{1, 3}", "(1, 3)", True),
    ("notation", "{1, 3}", "(3, 1)", False),
    ("notation", "$\\boxed{1/3}$", "1/3", True),
    ("notation", "x_{1}=2,\\quadx_{2}=5", "2, 5", True),
    # -- sets: duplicates ignored; ';', 'or' and 'and' separate items ------------------
    ("set", "\\{1, 2, 2\\}", "\\{1, 2\\}", True),
    ("set", "(1,2), (3,4), (1,2)", "(3,4), (1,2)", True),
    ("set", "(1,2), (3,4)", "(1,2), (3,5)", False),
    ("set", "1; 2; 3", "\\{1,2,3\\}", True),
    ("set", "(0;1), (2;3)", "(2,3), (0,1)", True),
    ("set", "(11,7)or(7,11)", "(7,11), (11,7)", True),
    ("set", "p=5,q=2;p=7,q=2", "(5,2),(7,2)", True),
    ("set", "p=5,q=2;p=7,q=2", "(5,2),(2,7)", False),
    # -- identities decided exactly in process -------------------------------------------
    ("sym", "((x+1)^{64}-(x-1)^{64})^{64}", "((x-1)^{64}-(x+1)^{64})^{64}", True),
    ("sym", "((x+1)^{64}-(x-1)^{64})^{64}", "((x+1)^{64}+(x-1)^{64})^{64}", False),
    ("sym", "\\frac{1}{3\\sqrt[3]{x}^2}", "\\frac{1}{3x^{2/3}}", True),
    ("sym", "\\tan^2 y + 1", "\\sec^2 y", True),
    ("sym", "\\tan^2 y + 1", "\\csc^2 y", False),
]

REWARD_CASES: list[tuple[str, str, str, float]] = [
    # (category, completion, reference, reward): extraction from whole completions.
    # -- GSM8K-style: "####", "The answer is", plain final numbers ----------------------
    ("gsm8k", "Each box holds 6 eggs, so 4 boxes hold 4 * 6 = 24 eggs.\n#### 24", "24", 1.0),
    ("gsm8k", "Each box holds 6 eggs, so 4 boxes hold 4 * 6 = 24 eggs.\n#### 25", "24", 0.0),
    ("gsm8k", "She pays 3 * $4 = $12 for the pens. The answer is 12.", "12", 1.0),
    ("gsm8k", "He walks 2 + 3 = 5 miles on Monday and twice that, 10 miles, on Tuesday.", "10", 1.0),
    ("gsm8k", "The ticket costs $7.50, so two cost $15.", "15", 1.0),
    ("gsm8k", "The farm has 1,250 cows in total.\nThe answer is: 1,250", "1250", 1.0),
    ("gsm8k", "**Answer:** 42", "42", 1.0),
    ("gsm8k", "So the answer is 42 apples.", "42", 1.0),
    ("gsm8k", "So the answer is 41 apples.", "42", 0.0),
    ("gsm8k", "Final answer: 3/4", "0.75", 1.0),
    ("gsm8k", "The discount is 25%.", "25", 1.0),
    ("gsm8k", "Tom had 9 marbles and lost 4, so 9 - 4 = 5 are left.", "5", 1.0),
    ("gsm8k", "Solution: 12 * 3 = 36.\n#### 36\nExplanation: three dozen.", "Natalia needs 12*3 = 36.\n#### 36", 1.0),
    # -- MATH-style: boxes, Minerva's "Final Answer: ... I hope it is correct." ----------
    ("math", "Thus $x = \\boxed{-\\frac{1}{2}}$.", "-1/2", 1.0),
    ("math", "\\[\\boxed{\\dfrac{\\sqrt{3}}{2}}\\]", "\\frac{\\sqrt3}{2}", 1.0),
    ("math", "The solutions are $\\boxed{2, -3}$.", "-3, 2", 1.0),
    ("math", "So the domain is $\\boxed{(-\\infty, 2]}$.", "(-\\infty,2]", 1.0),
    ("math", "So the domain is $\\boxed{(-\\infty, 2)}$.", "(-\\infty,2]", 0.0),
    ("math", "Expanding, we get $\\boxed{x^2+2x+1}$.", "(x+1)^2", 1.0),
    ("math", "<think>Let me try 3... no.</think>\nThe area is $\\boxed{12\\pi}$.", "12\\pi", 1.0),
    ("math", "**Final Answer**\n\\[\n\\boxed{45^\\circ}\n\\]", "45", 1.0),
    ("math", "Final Answer: The final answer is $\\frac{3}{5}$. I hope it is correct.", "\\frac35", 1.0),
    ("math", "Final Answer: The largest possible $n$ is 17.", "17", 1.0),
    ("math", "We get $\\boxed{7}$. Checking, the answer is correct.", "7", 1.0),
    ("math", "\\boxed{5}. Wait, that is wrong: 2 + 4 = 6, so the total is \\boxed{6}.", "6", 1.0),
    ("math", "\\boxed{5}. Wait, that is wrong: 2 + 4 = 6, so the total is \\boxed{6}.", "5", 0.0),
    ("math", "Thus $(a, b) = \\boxed{(3, -1)}$.", "(3,-1)", 1.0),
    ("math", "The matrix is $\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}$.",
     "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 1.0),
    ("math", "So $k = \\boxed{4}$.", "k=4", 1.0),
    ("math", "Hence the answer is $2\\sqrt{5}$.", "\\sqrt{20}", 1.0),
    ("math", "Therefore $x \\geq 5$ is the solution set.", "x \\ge 5", 1.0),
    ("math", "the identity is $\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$.", "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", 1.0),
    ("math", "The answer is \\(\\frac{7}{2}\\).", "3.5", 1.0),
    # -- several boxes: one answer when adjacent; all together for a collection -------
    ("boxes", "The roots are $\\boxed{1}$ and $\\boxed{-2}$.", "-2, 1", 1.0),
    ("boxes", "\\boxed{(1, 2)}, \\boxed{(2, 1)}", "(2,1),(1,2)", 1.0),
    ("boxes", "\\boxed{k = 45} \\quad \\text{and} \\quad \\boxed{n = 2}", "k = 45, n = 2", 1.0),
    ("boxes", "One root is \\boxed{1}. Factoring the rest, the other root is \\boxed{2}.", "1, 2", 1.0),
    ("boxes", "One root is \\boxed{1}. Factoring the rest, the other root is \\boxed{2}.", "1", 0.0),
    ("boxes", "\\boxed{4}\n\n**Final Answer**\n\\boxed{4}", "4", 1.0),
    # -- multiple choice ----------------------------------------------------------------
    ("mc", "The correct option is (B).", "B", 1.0),
    ("mc", "Answer: C", "(C)", 1.0),
    ("mc", "$\\boxed{\\text{(D)}}$", "D", 1.0),
    ("mc", "A. Because B is not valid", "A", 1.0),
    ("mc", "It is either A or B.", "A", 0.0),
    ("mc", "The answer is (E).", "D", 0.0),
    # -- fragments are never an answer --------------------------------------------------
    ("fragment", "The probability is $\\frac{1}{2}$.", "2", 0.0),
    ("fragment", "The area is $x^2$.", "2", 0.0),
    ("fragment", "AZYUK2A", "2", 0.0),
    ("fragment", "The count is 2^{10}.", "10", 0.0),
    ("fragment", "It equals \\sqrt{2} exactly.", "2", 0.0),
    ("fragment", "so x_2 is the larger one", "2", 0.0),
    ("fragment", "The result is 10 - 3", "3", 0.0),
    ("fragment", "The slope is 2x here.", "2", 0.0),
    # -- hedges get 0 --------------------------------------------------------------------
    ("hedge", "The answer is either 3 or 5.", "5", 0.0),
    ("hedge", "The answer is \\boxed{3} or \\boxed{5}", "5", 0.0),
    ("hedge", "\\boxed{3, 5}", "5", 0.0),
    ("hedge", "The answer is not 5.", "5", 0.0),
    ("hedge", "So $x = 2$ or $x = 3$.", "3", 0.0),
    ("hedge", "The answer is $2$ or $3$.", "3", 0.0),
    ("hedge", "The answer is 5 or 6", "5", 0.0),
    # -- caps: an over-long or over-deep answer is no answer (no fall-through) ----------
    ("cap", "The total is 1. \\boxed{" + "1+" * 1000 + "1}", "1", 0.0),
    ("cap", "7 \\boxed{" + "{" * 60 + "7" + "}" * 60 + "}", "7", 0.0),
    ("cap", "#### " + "9" * 3000, "9", 0.0),
]
"""Whole-completion cases for `math_reward`: recall on GSM8K- and MATH-style outputs,
and no reward for fragments, hedges or capped answers."""

ADVERSARIAL: list[str] = [
    "__import__('os').system('touch {marker}')",
    "__import__(\"os\").system(\"touch {marker}\")",
    "open('{marker}', 'w').write('x')",
    "eval(\"open('{marker}','w')\")",
    "exec(\"open('{marker}','w')\")",
    "(lambda: __import__('os').system('touch {marker}'))()",
    "lambda x: x",
    "x.__class__.__bases__[0].__subclasses__()",
    "().__class__.__base__.__subclasses__()",
    "__builtins__",
    "globals()['__builtins__']",
    "Symbol('x').__init__",
    "import os; os.system('touch {marker}')",
    "os.system('touch {marker}')",
    "\\input{{/etc/passwd}}",
    "\\write18{{touch {marker}}}",
    "9**9**9**9",
    "10^{{10^{{10}}}}",
    "2^{{2^{{2^{{2^{{2^{{2}}}}}}}}}}",
    "100000!",
    "(10^{{1000}})!",
    "\\binom{{10^9}}{{5}}",
    "10^{{100000}}",
    "1e999999999",
    "9" * 5000,
    "(" * 10000 + "1" + ")" * 10000,
    "{{" * 10000 + "1" + "}}" * 10000,
    "\\frac{{" * 5000 + "1" + "}}{{2}}" * 5000,
    "\\sqrt{{" * 3000 + "2" + "}}" * 3000,
    "-" * 100000 + "1",
    "1+" * 200000 + "1",
    "x" * 1_000_000,
    "\\boxed{{" * 2000 + "1" + "}}" * 2000,
    "((x+1)^{{64}}-(x-1)^{{64}})^{{64}}",
    "\\sin(\\sin(\\sin(\\sin(\\sin(\\sin(\\sin(\\sin(x))))))))^{{999}}",
    "e^{{e^{{e^{{e^{{e^{{x}}}}}}}}}}",
    "\x00\x01\x02\ufffd\U0001f600",
    "\\def\\x{{\\x}}\\x",
]
"""Injection, resource-exhaustion and malformed inputs. ``{marker}`` is replaced by a
marker-file path in the tests; literal braces are doubled for ``str.format``."""


CROSSCHECK_MEMORY_BYTES = 4 << 30
"""Address-space cap of the math-verify cross-check process: math-verify hands answers to
sympy without a size bound (``((x+1)^{64}-(x-1)^{64})^{64}`` above expands a multinomial
of tens of GB), so its run is bounded here and an exhausted case counts as a disagreement."""


def _crosscheck(argv: list[str] | None = None) -> None:  # pragma: no cover - dev tool, needs math-verify
    """Run math-verify on the case table; print agreement and every disagreement.

    ``--json`` prints one JSON object instead (``n``, ``agree``, ``rows``), for the test that
    runs this in a child process. The process first lowers its own address-space limit to
    :data:`CROSSCHECK_MEMORY_BYTES` (POSIX), so math-verify cannot exhaust the machine.
    """
    import json
    import sys

    argv = sys.argv[1:] if argv is None else argv
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = CROSSCHECK_MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(hard, CROSSCHECK_MEMORY_BYTES)
        if soft == resource.RLIM_INFINITY or soft > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass
    from math_verify import parse, verify

    from .equivalence import is_equivalent

    agree, rows = 0, []
    for cat, pred, ref, expected in CASES:
        ours = is_equivalent(pred, ref)
        try:
            theirs = bool(verify(parse("$" + ref + "$"), parse("$" + pred + "$"), timeout_seconds=1))
        except Exception as exc:  # math-verify failing (MemoryError under the cap included) is a disagreement
            theirs = f"error {type(exc).__name__}"
        agree += theirs == ours
        if theirs != ours:
            rows.append((cat, pred, ref, expected, ours, theirs))
    n = len(CASES)
    if "--json" in argv:
        print(json.dumps({"n": n, "agree": agree, "rows": rows}))
        return
    ours_ok = sum(is_equivalent(p, r) == e for _, p, r, e in CASES)
    print(f"cases: {n}; ours correct: {ours_ok}/{n}; math-verify agreement: {agree}/{n} "
          f"({100 * agree / n:.1f}%)")
    for cat, pred, ref, expected, ours, theirs in rows:
        print(f"  [{cat}] pred={pred!r} ref={ref!r} expected={expected} ours={ours} "
              f"math-verify={theirs}")


if __name__ == "__main__":
    _crosscheck()
